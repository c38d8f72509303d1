#!/usr/bin/env bash
# bench.sh [SIZE_MIB ...] compares blockmrs with the stock tools it stands
# in for, side by side in one run (default sizes: 256 1024):
#
#   add  stock:    age -r RECIPIENT FILE | ipfs add -Q     (Kubo, flatfs sync=true)
#        blockmrs: blockmrs add FILE
#        blockmrs: blockmrs add FILE                       (a repo with a passphrase, through its
#                  running daemon, in a session opened once with `blockmrs unlock`: no scrypt)
#        blockmrs: blockmrs add FILE                       (a repo with a passphrase, no daemon:
#                  $BLOCKMRS_PASSPHRASE, one scrypt unlock per add)
#        ref:      age -r RECIPIENT FILE > out             (encryption alone, no IPFS)
#   get  stock:    ipfs cat CID | age -d -i KEYFILE > out
#        blockmrs: blockmrs get CID -o out                 (fsyncs out before renaming it)
#        blockmrs: blockmrs get CID > out                  (stdout, no fsync: like stock)
#   fetch (node to node over loopback TCP, the same record ciphertext; the
#         fetching side's store starts without its blocks every time)
#        stock:    ipfs cat CID > out                      (a Kubo daemon fetching from another over bitswap)
#        stock:    ipfs cat CID | age -d -i KEYFILE > out
#        blockmrs: sidebyside node fetch > out             (a node on the clinic's repo fetches the record
#                  from a `blockmrs daemon` over the DAG stream, then decrypts it)
#        blockmrs: sidebyside node fetch -bitswap > out    (the same over bitswap alone)
#
# BENCH_ONLY=fetch runs only the fetch comparison, BENCH_ONLY=local only
# add and get, BENCH_ONLY=add only add (scripts/bench-web.sh runs that).
#
# Each pipeline runs 3 times (BENCH_REPS), interleaved, with the page cache
# dropped before every run when /proc/sys/vm/drop_caches is writable (root).
# Every add encrypts to a fresh key, so every repetition stores new blocks:
# nothing deduplicates (checked below). Timing and peak RSS come from
# internal/cmd/sidebyside; the table it prints gives each pipeline's
# median wall time, MB/s (10^6 B/s of plaintext) and peak RSS, and its
# throughput relative to the stock pipeline.
#
# Everything lives in one temp dir (inputs, both repos, outputs), so on one
# disk; it is removed at exit unless BENCH_KEEP=1. BENCH_TMP picks its parent
# (default $TMPDIR or /tmp). BENCH_JSON=FILE keeps the raw per-run numbers.
# The stock Kubo node gets its own fresh repo; it never sees blockmrs's.
#
# Not part of the test command (scripts/test.sh): it moves gigabytes and
# takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=("$@")
[[ ${#sizes[@]} -gt 0 ]] || sizes=(256 1024)
for s in "${sizes[@]}"; do
	[[ "$s" =~ ^[1-9][0-9]*$ ]] || { echo "bench.sh: size $s is not a whole number of MiB" >&2; exit 2; }
done
reps="${BENCH_REPS:-3}"
only="${BENCH_ONLY:-}"
[[ "$only" == "" || "$only" == fetch || "$only" == local || "$only" == add ]] || { echo "bench.sh: BENCH_ONLY is fetch, local or add" >&2; exit 2; }

log() { printf 'bench: %s\n' "$*" >&2; }

work="$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/blockmrs-bench.XXXXXX")"
daemons=()
cleanup() {
	local pid
	for pid in "${daemons[@]}"; do
		kill -INT "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [[ "${BENCH_KEEP:-0}" == 1 ]]; then
		log "kept $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
mkdir -p "$work/bin" "$work/in" "$work/out" "$work/cid"

log "building blockmrs and sidebyside"
go build -o "$work/bin/blockmrs" ./cmd/blockmrs
go build -o "$work/bin/sidebyside" ./internal/cmd/sidebyside
tools="$(scripts/stock-tools.sh | tail -n 1)"
ipfs="$tools/ipfs" age="$tools/age" keygen="$tools/age-keygen" bm="$work/bin/blockmrs"

# Stock Kubo: test + unixfs-v1-2025 profiles (same CIDs as blockmrs), flatfs
# with sync=true (fsync per block: durable, as blockmrs is), no telemetry.
kubo="$work/kubo"
kenv=("IPFS_PATH=$kubo" "IPFS_TELEMETRY=off")
env "${kenv[@]}" "$ipfs" init --profile=test,unixfs-v1-2025 --empty-repo >/dev/null
spec="$(env "${kenv[@]}" "$ipfs" config --json Datastore.Spec)"
synced="$(printf '%s' "$spec" | sed 's/"sync": false/"sync": true/')"
[[ "$(printf '%s' "$synced" | grep -c '"sync": true')" == 1 ]] || {
	echo "bench.sh: cannot find the flatfs \"sync\" setting in Datastore.Spec:" >&2
	printf '%s\n' "$spec" >&2
	exit 1
}
env "${kenv[@]}" "$ipfs" config --json Datastore.Spec "$synced"
env "${kenv[@]}" "$ipfs" config Plugins.Plugins.telemetry.Config.Mode off
"$keygen" -o "$work/stock.key" 2>/dev/null
recipient="$("$keygen" -y "$work/stock.key")"

# blockmrs: a fresh repo with one account, keys unencrypted.
brepo="$work/blockmrs"
benv=("BLOCKMRS_PATH=$brepo")
env "${benv[@]}" "$bm" init --no-passphrase --name Bench >/dev/null

# blockmrs with a passphrase (age scrypt, as init makes it), twice: one
# repo whose daemon runs with a session unlocked once (the adds go
# through the daemon and name no passphrase, so they fail if the session
# is not used), one without a daemon, where every add pays scrypt.
pass="bench passphrase"
prepo="$work/blockmrs-session" nrepo="$work/blockmrs-scrypt"
penv=("BLOCKMRS_PATH=$prepo")
nenv=("BLOCKMRS_PATH=$nrepo" "BLOCKMRS_PASSPHRASE=$pass")
if [[ "$only" != fetch ]]; then
	env "${penv[@]}" BLOCKMRS_PASSPHRASE="$pass" "$bm" init --name Bench >/dev/null
	env "${nenv[@]}" "$bm" init --name Bench >/dev/null
fi

# One random input per size; every repetition reuses it (fresh keys make
# every ciphertext, and so every block, new).
for s in "${sizes[@]}"; do
	log "writing ${s} MiB of random input"
	head -c "$((s << 20))" /dev/urandom >"$work/in/$s.bin"
done

# json_argv ARG...: a JSON array of strings (arguments here hold no quotes,
# backslashes or control characters; checked).
json_argv() {
	local out="" a
	for a in "$@"; do
		[[ "$a" != *[\"\\]* && "$a" != *[[:cntrl:]]* ]] || { echo "bench.sh: cannot quote $a" >&2; exit 1; }
		out+="${out:+, }\"$a\""
	done
	printf '[%s]' "$out"
}
kenv_json="$(json_argv "${kenv[@]}")"
benv_json="$(json_argv "${benv[@]}")"
penv_json="$(json_argv "${penv[@]}")"
nenv_json="$(json_argv "${nenv[@]}")"

# wait_file FILE: wait up to 60 s for FILE to exist.
wait_file() {
	local i
	for ((i = 0; i < 600; i++)); do
		[[ -s "$1" ]] && return 0
		sleep 0.1
	done
	echo "bench.sh: $1 did not appear" >&2
	exit 1
}

if [[ "$only" != fetch ]]; then
	log "starting the daemon of the passphrase repo and unlocking its account"
	env "${penv[@]}" BLOCKMRS_LISTEN=/ip4/127.0.0.1/tcp/0 BLOCKMRS_API=127.0.0.1:0 BLOCKMRS_MDNS=false \
		"$bm" daemon >"$work/session-daemon.log" 2>&1 &
	daemons+=("$!")
	wait_file "$prepo/api.addr"
	env "${penv[@]}" BLOCKMRS_PASSPHRASE="$pass" "$bm" unlock --idle 6h >&2
fi

# Node-to-node fetches: per size, a `blockmrs daemon` serving a patient's
# repo that holds the record, a clinic's repo the fetches run on, and two
# Kubo daemons, the server holding the same ciphertext, the client (flatfs
# sync=true, like blockmrs's durable store) fetching it with `ipfs cat`.
if [[ "$only" == "" || "$only" == fetch ]]; then
	for s in "${sizes[@]}"; do
		nd="$work/node-$s"
		log "setting up node-to-node fetch of ${s} MiB"
		"$work/bin/sidebyside" node setup -dir "$nd" -in "$work/in/$s.bin"
		env BLOCKMRS_PATH="$nd/server" BLOCKMRS_LISTEN=/ip4/127.0.0.1/tcp/0 BLOCKMRS_API=127.0.0.1:0 BLOCKMRS_MDNS=false \
			"$bm" daemon >"$nd/daemon.log" 2>&1 &
		daemons+=("$!")
		wait_file "$nd/server/api.addr"
		port="$(grep -o '/ip4/127.0.0.1/tcp/[0-9]*' "$nd/daemon.log" | head -n 1)"
		[[ -n "$port" ]] || { echo "bench.sh: no listen address in $nd/daemon.log" >&2; exit 1; }
		echo "$port/p2p/$(cat "$nd/server.peer")" >"$nd/server.addr"
		for k in kubo-srv kubo-cli; do
			env IPFS_PATH="$nd/$k" IPFS_TELEMETRY=off "$ipfs" init --profile=test,unixfs-v1-2025 --empty-repo >/dev/null
			env IPFS_PATH="$nd/$k" "$ipfs" config Plugins.Plugins.telemetry.Config.Mode off
		done
		kspec="$(env IPFS_PATH="$nd/kubo-cli" "$ipfs" config --json Datastore.Spec | sed 's/"sync": false/"sync": true/')"
		env IPFS_PATH="$nd/kubo-cli" "$ipfs" config --json Datastore.Spec "$kspec"
		kc="$(env IPFS_PATH="$nd/kubo-srv" "$ipfs" add -Q "$nd/ciphertext")"
		[[ "$kc" == "$(cat "$nd/cid")" ]] || { echo "bench.sh: stock Kubo gives $kc for the record's ciphertext, blockmrs $(cat "$nd/cid")" >&2; exit 1; }
		for k in kubo-srv kubo-cli; do
			env IPFS_PATH="$nd/$k" IPFS_TELEMETRY=off "$ipfs" daemon --offline=false >"$nd/$k.log" 2>&1 &
			daemons+=("$!")
			wait_file "$nd/$k/api"
		done
		ksrv="$(env IPFS_PATH="$nd/kubo-srv" "$ipfs" swarm addrs local --id | grep '^/ip4/127.0.0.1/tcp/' | head -n 1)"
		env IPFS_PATH="$nd/kubo-cli" "$ipfs" swarm connect "$ksrv" >/dev/null
	done
fi

{
	printf '{"reps": %d, "comparisons": [\n' "$reps"
	first=1
	for s in "${sizes[@]}"; do
		in="$work/in/$s.bin" bytes=$((s << 20))
		if [[ "$only" == "" || "$only" == fetch ]]; then
			nd="$work/node-$s"
			[[ $first == 1 ]] || printf ',\n'
			first=0
			kcli=("IPFS_PATH=$nd/kubo-cli" "IPFS_TELEMETRY=off")
			kcli_json="$(json_argv "${kcli[@]}")"
			reset="$(json_argv "$work/bin/sidebyside" node reset -repo "$nd/client" -cid "$(cat "$nd/cid")" -blocks "$nd/blocks")"
			fetch=("$work/bin/sidebyside" node fetch -repo "$nd/client" -peer "$(cat "$nd/server.addr")" -cid "$(cat "$nd/cid")")
			cat <<EOF
 {"name": "fetch ${s}MiB", "bytes": $bytes, "pipelines": [
  {"name": "stock ipfs cat (Kubo->Kubo)", "baseline": true, "env": $kcli_json,
   "before": [$(json_argv "$ipfs" repo gc --quiet)],
   "stages": [$(json_argv "$ipfs" cat "$(cat "$nd/cid")")],
   "stdout": "$work/out/fetch-stock-ct-$s"},
  {"name": "stock ipfs cat | age -d", "env": $kcli_json,
   "before": [$(json_argv "$ipfs" repo gc --quiet)],
   "stages": [$(json_argv "$ipfs" cat "$(cat "$nd/cid")"), $(json_argv "$age" -d -i "$nd/age.key")],
   "stdout": "$work/out/fetch-stock-$s"},
  {"name": "blockmrs node->node, DAG stream", "before": [$reset],
   "stages": [$(json_argv "${fetch[@]}")],
   "stdout": "$work/out/fetch-blockmrs-$s"},
  {"name": "blockmrs node->node, bitswap only", "before": [$reset],
   "stages": [$(json_argv "${fetch[@]}" -bitswap)],
   "stdout": "$work/out/fetch-blockmrs-bitswap-$s"}
 ]}
EOF
		fi
		[[ "$only" != fetch ]] || continue
		[[ $first == 1 ]] || printf ',\n'
		first=0
		cat <<EOF
 {"name": "add ${s}MiB", "bytes": $bytes, "pipelines": [
  {"name": "stock age -r | ipfs add -Q", "baseline": true, "env": $kenv_json,
   "stages": [$(json_argv "$age" -r "$recipient" "$in"), $(json_argv "$ipfs" add -Q)],
   "stdout": "$work/cid/stock-$s.{rep}"},
  {"name": "blockmrs add", "env": $benv_json,
   "stages": [$(json_argv "$bm" add "$in" --title bench)],
   "stdout": "$work/cid/blockmrs-$s.{rep}"},
  {"name": "blockmrs add, passphrase, daemon session", "env": $penv_json,
   "stages": [$(json_argv "$bm" add "$in" --title bench)],
   "stdout": "$work/cid/session-$s.{rep}"},
  {"name": "blockmrs add, passphrase, no daemon", "env": $nenv_json,
   "stages": [$(json_argv "$bm" add "$in" --title bench)],
   "stdout": "$work/cid/scrypt-$s.{rep}"},
  {"name": "ref: age -r > file", "stages": [$(json_argv "$age" -r "$recipient" "$in")],
   "stdout": "$work/out/age-$s"}
 ]}
EOF
		[[ "$only" != add ]] || continue
		cat <<EOF
,
 {"name": "get ${s}MiB", "bytes": $bytes, "pipelines": [
  {"name": "stock ipfs cat | age -d > file", "baseline": true, "env": $kenv_json,
   "stages": [$(json_argv "$ipfs" cat "{file:$work/cid/stock-$s.{rep}}"), $(json_argv "$age" -d -i "$work/stock.key")],
   "stdout": "$work/out/get-stock-$s"},
  {"name": "blockmrs get -o file", "env": $benv_json,
   "stages": [$(json_argv "$bm" get "{file:$work/cid/blockmrs-$s.{rep}}" -o "$work/out/get-blockmrs-$s")]},
  {"name": "blockmrs get > file", "env": $benv_json,
   "stages": [$(json_argv "$bm" get "{file:$work/cid/blockmrs-$s.{rep}}")],
   "stdout": "$work/out/get-blockmrs-stdout-$s"}
 ]}
EOF
	done
	printf ']}\n'
} >"$work/spec.json"

echo "# blockmrs side-by-side benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "# blockmrs $(git describe --always --dirty 2>/dev/null || echo '?'), $(go env GOVERSION)," \
	"Kubo $(env "${kenv[@]}" "$ipfs" version --number), age $("$age" --version)"
echo "# $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1))," \
	"$(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo)," \
	"work dir on $(df -T "$work" | awk 'NR==2 {print $2 " " $1}')"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

drop=()
if [[ -w /proc/sys/vm/drop_caches ]]; then
	drop=(-drop-caches)
fi
json_out="${BENCH_JSON:-$work/results.json}"
"$work/bin/sidebyside" "${drop[@]}" -json "$json_out" "$work/spec.json"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# Checks, untimed: every get and fetch returned the input; every repetition stored a
# different record (nothing deduplicated); blockmrs's CID is the CID stock
# Kubo gives the same ciphertext.
fail=0
for s in "${sizes[@]}"; do
	in="$work/in/$s.bin"
	if [[ "$only" == "" || "$only" == fetch ]]; then
		for f in fetch-stock fetch-blockmrs fetch-blockmrs-bitswap; do
			cmp -s "$in" "$work/out/$f-$s" || { echo "CHECK FAILED: $f $s MiB differs from the input" >&2; fail=1; }
		done
		cmp -s "$work/node-$s/ciphertext" "$work/out/fetch-stock-ct-$s" || { echo "CHECK FAILED: ipfs cat $s MiB differs from the ciphertext" >&2; fail=1; }
	fi
	[[ "$only" != fetch ]] || continue
	if [[ "$only" != add ]]; then
		for f in get-stock get-blockmrs get-blockmrs-stdout; do
			cmp -s "$in" "$work/out/$f-$s" || { echo "CHECK FAILED: $f $s MiB differs from the input" >&2; fail=1; }
		done
	fi
	# The record added in the session reads back (through the daemon).
	env "${penv[@]}" "$bm" get "$(cat "$work/cid/session-$s.1")" | cmp -s "$in" - ||
		{ echo "CHECK FAILED: the session's add of $s MiB does not read back as the input" >&2; fail=1; }
	for who in stock blockmrs session scrypt; do
		n="$(cat "$work/cid/$who-$s".* | sort -u | wc -l)"
		[[ "$n" == "$reps" ]] || { echo "CHECK FAILED: $who add $s MiB gave $n distinct CIDs in $reps reps" >&2; fail=1; }
	done
done
s="${sizes[0]}"
if [[ "$only" != fetch ]]; then
	c="$(cat "$work/cid/blockmrs-$s.1")"
	k="$(env "${benv[@]}" "$bm" cat --raw "$c" | env "${kenv[@]}" "$ipfs" add -Q --only-hash)"
	[[ "$k" == "$c" ]] || { echo "CHECK FAILED: blockmrs CID $c, stock Kubo gives $k for its ciphertext" >&2; fail=1; }
fi
if [[ $fail == 0 ]]; then
	echo "# checks: every get and fetch matched its input; the session's add reads back; no repetition deduplicated; blockmrs ciphertext CID = stock Kubo CID"
fi
exit "$fail"
