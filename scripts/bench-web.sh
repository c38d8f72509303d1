#!/usr/bin/env bash
# bench-web.sh measures the speed aims of the web app and unlocked
# sessions (BENCHMARKS.md, "Web app and unlocked sessions"):
#
#   1. add: `blockmrs add` of SIZE MiB (default 256) of random bytes into a
#      repo with a passphrase, through its running daemon, in a session
#      opened once with `blockmrs unlock`, side by side with stock
#      `age -r R FILE | ipfs add -Q` (Kubo, flatfs sync=true), a repo
#      without a passphrase, and a passphrase repo without a daemon (one
#      scrypt unlock per add). This is scripts/bench.sh's add comparison
#      (BENCH_ONLY=add), which sets up both sides and checks the results.
#   2. list: GET /api/v1/records through an unlocked session with 1,000
#      and 10,000 records (node/api BenchmarkRecordsList: median, p90,
#      and the first GET after the unlock).
#   3. page: the web app's records page with 1,000 records in headless
#      Chromium, from navigation to the rendered rows (the page's
#      performance mark "records-ready"), median of PAGE_LOADS loads
#      (cmd/blockmrs TestRecordsPageLoadInChromium, long form).
#
#   bash scripts/bench-web.sh              # all three; about 5 minutes
#   bash scripts/bench-web.sh add 1024     # one part (add takes a size)
#
# BENCH_REPS (default 3) is the add's repetitions, LIST_TIMES (default
# 50) the GETs per list benchmark, PAGE_RECORDS (1000) and PAGE_LOADS
# (10) the page measurement's. Not part of the test command
# (scripts/test.sh), which runs the page measurement's short form only.
set -euo pipefail
cd "$(dirname "$0")/.."

part="${1:-all}"
[[ "$part" == all || "$part" == add || "$part" == list || "$part" == page ]] ||
	{ echo "bench-web.sh: the part is add, list or page (default all)" >&2; exit 2; }
size="${2:-256}"

echo "# blockmrs web app and sessions benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "# blockmrs $(git describe --always --dirty 2>/dev/null || echo '?'), $(go env GOVERSION)"
echo "# $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1))," \
	"$(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo)"
if [[ "$part" == all || "$part" == add ]]; then
	echo "## add"
	BENCH_ONLY=add scripts/bench.sh "$size"
fi
if [[ "$part" == all || "$part" == list ]]; then
	echo "## list"
	echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
	go test -run '^$' -bench RecordsList -benchtime "${LIST_TIMES:-50}x" -timeout 30m ./node/api | grep -E '^(Benchmark|cpu:)'
	echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
fi
if [[ "$part" == all || "$part" == page ]]; then
	echo "## page"
	echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
	go test -count=1 -timeout 30m -run '^TestRecordsPageLoadInChromium$' -v ./cmd/blockmrs \
		-args -records-page-records "${PAGE_RECORDS:-1000}" -records-page-loads "${PAGE_LOADS:-10}" |
		grep -E 'records page ready|^(--- |ok|FAIL)'
	echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
fi
