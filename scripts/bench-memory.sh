#!/usr/bin/env bash
# bench-memory.sh measures the resident memory of `blockmrs daemon`: idle,
# and while it serves one 64 MiB record to ten nodes fetching it at once
# (over the DAG stream, then over bitswap), and compares its idle memory
# with a stock Kubo daemon's. internal/cmd/membench does the work; see its
# doc comment for the steps. It prints a Markdown table for BENCHMARKS.md.
#
#   bash scripts/bench-memory.sh                 # 64 MiB, 10 fetchers, 10 s idle
#   bash scripts/bench-memory.sh -size 256 -fetchers 20 -idle 30s
#
# Arguments are passed on to membench. BENCH_NO_KUBO=1 skips Kubo (and
# building it with scripts/stock-tools.sh). Everything lives in a temp dir
# under $TMPDIR (default /tmp), removed at exit.
#
# Not part of the test command (scripts/test.sh); takes about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'bench-memory: %s\n' "$*" >&2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/blockmrs-bench-memory.XXXXXX")"
trap 'rm -rf "$work"' EXIT

log "building blockmrs and membench"
go build -o "$work/blockmrs" ./cmd/blockmrs
go build -o "$work/membench" ./internal/cmd/membench
kubo=()
if [[ "${BENCH_NO_KUBO:-0}" != 1 ]]; then
	tools="$(scripts/stock-tools.sh | tail -n 1)"
	kubo=(-ipfs "$tools/ipfs")
fi

echo "# blockmrs daemon memory, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "# blockmrs $(git describe --always --dirty 2>/dev/null || echo '?'), $(go env GOVERSION)${kubo:+, Kubo $("${kubo[1]}" version --number)}"
echo "# $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1))," \
	"$(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo)"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$work/membench" -blockmrs "$work/blockmrs" "${kubo[@]}" "$@"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
