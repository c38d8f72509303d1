#!/usr/bin/env bash
# bench-fhir.sh measures `blockmrs fhir import` and `fhir export` as the
# user runs them, one process per command, on Synthea-shaped bundles from
# internal/cmd/fhirgen, and prints a Markdown table for BENCHMARKS.md:
#
#   A  fhir import of 1,111 resources (fhirgen -rich: 3.9 MiB, the size of a
#      real Synthea export of that many), a repo without a passphrase, no
#      daemon; A0 the same resources without narratives and reference
#      ranges (fhirgen without -rich, 2.3 MiB), for the ratio
#   B  the same with a passphrase, through a daemon holding an unlocked
#      session (the command runs inside the daemon; its RSS is the daemon's
#      peak, read from /proc/PID/status VmHWM)
#   C  fhir import of a bundle of at least 50 MiB, no daemon: peak RSS
#   D  fhir export of 10,000 records, no daemon and through the daemon
#   E  the baseline: 1,111 resources added one by one with `add --kind fhir`
#      (the first BENCH_ADDS of them, timed and scaled to 1,111), without a
#      passphrase and with one (each add unlocks the keys)
#
# Wall time, CPU time (user + system) and peak RSS of each command come
# from /usr/bin/time -f "%e %U %S %M" (for a command run inside the daemon,
# the daemon's CPU time over the command, from /proc/PID/stat, is added);
# every import runs BENCH_REPS times (default 3) into a fresh repo, and the
# table gives each run. On a shared machine the CPU time (and resources per
# CPU second) moves less with the others' load than the wall time.
# Everything lives in a temp dir under $TMPDIR (default /tmp), removed at
# exit.
#
#   bash scripts/bench-fhir.sh
#   BENCH_REPS=5 BENCH_ADDS=50 bash scripts/bench-fhir.sh
#   BENCH_RUNS=AB bash scripts/bench-fhir.sh    # only runs A and B
#
# Not part of the test command (scripts/test.sh); takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

reps="${BENCH_REPS:-3}"
adds="${BENCH_ADDS:-100}"
runs="${BENCH_RUNS:-ABCDE}"
want() { [[ "$runs" == *"$1"* ]]; }
log() { printf 'bench-fhir: %s\n' "$*" >&2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/blockmrs-bench-fhir.XXXXXX")"
daemon=""
cleanup() {
	if [[ -n "$daemon" ]]; then kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

log "building blockmrs and fhirgen"
go build -o "$work/blockmrs" ./cmd/blockmrs
go build -o "$work/fhirgen" ./internal/cmd/fhirgen
bm="$work/blockmrs"
"$work/fhirgen" -rich -n 1111 >"$work/b1111.json"
"$work/fhirgen" -n 1111 >"$work/b1111plain.json"
if want C; then "$work/fhirgen" -mb 50 >"$work/b50.json"; fi
if want D; then "$work/fhirgen" -n 10000 -seed 2 >"$work/b10k.json"; fi
mkdir "$work/split"
if want E; then "$work/fhirgen" -rich -n 1111 -split "$work/split"; fi

export BLOCKMRS_LOG=error
unset BLOCKMRS_PASSPHRASE
pass="correct horse battery staple"

# timed LABEL CMD...: runs CMD (its stdout in $work/out.txt), prints
# "LABEL<tab>wall s<tab>CPU s<tab>peak RSS MiB".
timed() {
	local label="$1"
	shift
	if ! /usr/bin/time -o "$work/time.txt" -f '%e %U %S %M' "$@" >"$work/out.txt" 2>"$work/err.txt"; then
		log "$label failed:"
		cat "$work/err.txt" >&2
		exit 1
	fi
	read -r wall user sys kb <"$work/time.txt"
	printf '%s\t%s\t%s\t%s\n' "$label" "$wall" "$(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u + s}')" "$((kb / 1024))"
}

fresh() { # fresh DIR [passphrase]: a new repo with one patient
	rm -rf "$1"
	if [[ -n "${2:-}" ]]; then
		BLOCKMRS_PASSPHRASE="$2" "$bm" init --repo "$1" --name Pat --role patient >/dev/null
	else
		"$bm" init --repo "$1" --name Pat --role patient --no-passphrase >/dev/null
	fi
}

start_daemon() { # start_daemon DIR: a daemon on loopback, waits for its API
	BLOCKMRS_LISTEN=/ip4/127.0.0.1/tcp/0 BLOCKMRS_API=127.0.0.1:0 "$bm" daemon --repo "$1" >"$work/daemon.log" 2>&1 &
	daemon=$!
	for _ in $(seq 100); do
		[[ -s "$1/api.addr" ]] && return 0
		sleep 0.1
	done
	log "the daemon did not start"; cat "$work/daemon.log" >&2; exit 1
}

stop_daemon() {
	kill "$daemon"; wait "$daemon" 2>/dev/null || true; daemon=""
}

hwm() { awk '/VmHWM/ {printf "%d", $2/1024}' "/proc/$daemon/status"; }

# dcpu: the daemon's CPU time so far (user + system), in seconds.
dcpu() { awk -v hz="$(getconf CLK_TCK)" '{sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz}' "/proc/$daemon/stat"; }

# indaemon ROW BEFORE AFTER: ROW from timed, with the daemon's CPU time
# from BEFORE to AFTER added to the command's and the daemon's peak RSS.
indaemon() {
	local label wall cpu
	IFS=$'\t' read -r label wall cpu _ <<<"$1"
	printf '%s\t%s\t%s\t%s (daemon)\n' "$label" "$wall" "$(awk -v c="$cpu" -v a="$2" -v b="$3" 'BEGIN {printf "%.2f", c + b - a}')" "$(hwm)"
}

rows=()
size1111=$(stat -c %s "$work/b1111.json")
size50=0
if want C; then size50=$(stat -c %s "$work/b50.json"); fi
resources50=0

if want A; then
	log "A: fhir import of 1,111 resources, no passphrase"
	for i in $(seq "$reps"); do
		fresh "$work/a"
		rows+=("$(timed "A fhir import 1,111 (no passphrase) run $i" "$bm" fhir import --repo "$work/a" "$work/b1111.json")")
		fresh "$work/a"
		rows+=("$(timed "A0 fhir import 1,111 plain (no passphrase) run $i" "$bm" fhir import --repo "$work/a" "$work/b1111plain.json")")
	done
fi

if want B; then
	log "B: the same with a passphrase, through a daemon's unlocked session"
	for i in $(seq "$reps"); do
		fresh "$work/b" "$pass"
		start_daemon "$work/b"
		BLOCKMRS_PASSPHRASE="$pass" "$bm" unlock --repo "$work/b" >/dev/null
		t0=$(dcpu)
		r="$(timed "B fhir import 1,111 (passphrase, session) run $i" "$bm" fhir import --repo "$work/b" "$work/b1111.json")"
		rows+=("$(indaemon "$r" "$t0" "$(dcpu)")")
		stop_daemon
	done
fi

if want C; then
	log "C: fhir import of $((size50 >> 20)) MiB, no passphrase"
	for i in $(seq "$reps"); do
		fresh "$work/c"
		rows+=("$(timed "C fhir import $((size50 >> 20)) MiB run $i" "$bm" fhir import --repo "$work/c" "$work/b50.json")")
	done
	resources50=$(sed -n 's/^imported \([0-9,]*\) resources.*/\1/p' "$work/out.txt" | tr -d ,)
fi

if want D; then
	log "D: fhir export of 10,000 records"
	fresh "$work/d"
	"$bm" fhir import --repo "$work/d" "$work/b10k.json" >/dev/null
	for i in $(seq "$reps"); do
		rows+=("$(timed "D fhir export 10,000 (no daemon) run $i" "$bm" fhir export --repo "$work/d" -o "$work/export.json")")
	done
	start_daemon "$work/d"
	for i in $(seq "$reps"); do
		t0=$(dcpu)
		r="$(timed "D fhir export 10,000 (daemon) run $i" "$bm" fhir export --repo "$work/d" -o "$work/export.json")"
		rows+=("$(indaemon "$r" "$t0" "$(dcpu)")")
	done
	stop_daemon
fi

if want E; then
	log "E: the baseline, $adds of 1,111 resources added one by one"
	fresh "$work/e"
	files=("$work"/split/*.json)
	start=$(date +%s.%N)
	for f in "${files[@]:0:$adds}"; do
		"$bm" add --repo "$work/e" --kind fhir "$f" >/dev/null
	done
	end=$(date +%s.%N)
	rows+=("$(awk -v s="$start" -v e="$end" -v n="$adds" 'BEGIN {printf "E add --kind fhir one by one, no passphrase (%d timed, x1,111/%d)\t%.1f\t-\t-", n, n, (e-s)*1111/n}')")
	fresh "$work/e2" "$pass"
	few=$((adds / 5 > 0 ? adds / 5 : 1))
	start=$(date +%s.%N)
	for f in "${files[@]:0:$few}"; do
		BLOCKMRS_PASSPHRASE="$pass" "$bm" add --repo "$work/e2" --kind fhir "$f" >/dev/null
	done
	end=$(date +%s.%N)
	rows+=("$(awk -v s="$start" -v e="$end" -v n="$few" 'BEGIN {printf "E add --kind fhir one by one, passphrase (%d timed, x1,111/%d)\t%.1f\t-\t-", n, n, (e-s)*1111/n}')")
fi

echo "# bench-fhir, $(date -u '+%Y-%m-%d %H:%M UTC'), blockmrs $(git describe --always --dirty 2>/dev/null || echo '?'), $(go env GOVERSION)"
echo "# $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), load average $(cut -d' ' -f1-3 /proc/loadavg)"
inputs="1,111 resources in $((size1111 / 1024)) KiB ($(stat -c %s "$work/b1111plain.json" | awk '{printf "%d", $1 / 1024}') KiB plain)"
if want C; then inputs+="; $resources50 resources in $((size50 >> 20)) MiB"; fi
if want D; then inputs+="; 10,000 resources"; fi
echo "# inputs: $inputs"
echo
echo "| run | wall s | CPU s | peak RSS MiB | resources/s | resources per CPU s |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for r in "${rows[@]}"; do
	IFS=$'\t' read -r label wall cpu rss <<<"$r"
	n=1111
	case "$label" in
	C*) n=$resources50 ;;
	D*) n=10000 ;;
	esac
	echo "| $label | $wall | $cpu | $rss | $(awk -v n="$n" -v w="$wall" 'BEGIN {if (w > 0) printf "%.0f", n / w; else print "-"}') | $(awk -v n="$n" -v c="$cpu" 'BEGIN {if (c > 0) printf "%.0f", n / c; else print "-"}') |"
done
