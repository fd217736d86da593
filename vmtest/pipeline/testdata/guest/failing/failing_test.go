// Package failing is a guest fixture: one test passes, one fails.
package failing

import "testing"

func TestPasses(t *testing.T) {}

func TestFails(t *testing.T) {
	t.Log("fixture output before the failure")
	t.Fatal("this fixture test fails on purpose")
}
