// Package passing is a guest fixture: one test that passes.
package passing

import "testing"

func TestPasses(t *testing.T) {}
