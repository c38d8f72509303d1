#!/usr/bin/env bash
# bench-standing.sh measures the daemon's periodic standing-grant pass
# (keyshare.Repo.CoverStanding, every node.AckEvery) with nothing new to
# give, at 10,000 and 100,000 records of one subject with three standing
# grants (keyshare/standing_bench_test.go): "idle" as an idle daemon runs
# it (the pass mark holds), "full" with the mark cleared first (every
# pass before the mark; a pass after a chain change). Prints the raw
# benchmark output; takes several minutes (the full pass at 100,000
# records takes about a minute or more each time).
#
#   bash scripts/bench-standing.sh
#   BENCHTIME=3x bash scripts/bench-standing.sh
set -euo pipefail
cd "$(dirname "$0")/.."
echo "# bench-standing, $(date -u '+%Y-%m-%d %H:%M UTC'), blockmrs $(git describe --always --dirty 2>/dev/null || echo '?'), $(go env GOVERSION)"
echo "# $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
go test -run '^$' -bench 'CoverStanding' -benchtime "${BENCHTIME:-3x}" -timeout 60m ./keyshare
echo "# load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
