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
# With "fhir" first, it measures `blockmrs fhir import` instead: one
# process, no daemon, no passphrase, a fresh repo per run, each bundle made
# by internal/cmd/fhirgen (-mb SIZE, seed 1; seed 3 for 100 and over), and
# prints wall time, CPU time and peak RSS (/usr/bin/time) per run:
#
#   bash scripts/bench-memory.sh fhir 25 50 100    # sizes in MiB
#   BENCH_RUNS=2 bash scripts/bench-memory.sh fhir 50
#
# Not part of the test command (scripts/test.sh); takes about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'bench-memory: %s\n' "$*" >&2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/blockmrs-bench-memory.XXXXXX")"
trap 'rm -rf "$work"' EXIT

if [[ "${1:-}" == fhir ]]; then
	shift
	log "building blockmrs and fhirgen"
	go build -o "$work/blockmrs" ./cmd/blockmrs
	go build -o "$work/fhirgen" ./internal/cmd/fhirgen
	echo "# blockmrs fhir import memory, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "# blockmrs $(git describe --always --dirty 2>/dev/null || echo '?'), $(go env GOVERSION), $(nproc) CPUs"
	echo "| bundle MiB | resources | run | load before | wall s | CPU s | peak RSS MiB |"
	echo "| ---: | ---: | ---: | --- | ---: | ---: | ---: |"
	for mb in "${@:-50}"; do
		seed=1
		((mb >= 100)) && seed=3
		"$work/fhirgen" -mb "$mb" -seed "$seed" >"$work/b.json"
		size="$(du -m --apparent-size "$work/b.json" | cut -f1)"
		for run in $(seq "${BENCH_RUNS:-1}"); do
			rm -rf "$work/r"
			"$work/blockmrs" init --repo "$work/r" --name Pat --role patient --no-passphrase >/dev/null
			load="$(cut -d' ' -f1 /proc/loadavg)"
			BLOCKMRS_LOG=error /usr/bin/time -o "$work/t" -f '%e %U %S %M' \
				"$work/blockmrs" fhir import --repo "$work/r" "$work/b.json" >"$work/out"
			read -r wall user sys kb <"$work/t"
			n="$(grep -o 'imported [0-9,]* resources' "$work/out" | tr -dc 0-9,)"
			printf '| %s | %s | %s | %s | %s | %.1f | %d |\n' "$size" "$n" "$run" "$load" "$wall" \
				"$(echo "$user + $sys" | bc)" "$((kb / 1024))"
		done
	done
	exit 0
fi

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
