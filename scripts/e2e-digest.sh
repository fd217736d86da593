#!/bin/sh
# e2e-digest.sh LOG: after a red `make e2e`, print what each failed
# end-to-end test said, last: the harness's list of failed tests and its
# result line, the assertion that failed, and where the run's OUT was kept.
# CI shows the end of its output; this puts the reason there.
set -eu
log=${1:-out/e2e.log}
awk '
	function flush(name,    i, from) {
		# The harness prints "Failed tests:" before the failing output;
		# show from there, or the last 60 lines when it did not.
		from = 1
		for (i = 1; i <= n; i++)
			if (buf[i] ~ /Failed tests:|did not apply|does not build|kernel panic|result: /) { from = i; break }
		if (n - from > 120)
			from = n - 120
		print ""
		print "==== " name " failed:"
		for (i = from; i <= n; i++)
			if (buf[i] !~ /^ *(==>|<==) /)
				print buf[i]
	}
	/^=== RUN   [^\/]*$/ { n = 0; next }
	/^--- FAIL: / { flush($3); n = 0; next }
	{ buf[++n] = $0 }
' "$log"
