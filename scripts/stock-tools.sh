#!/usr/bin/env bash
# stock-tools.sh builds the stock third-party tools that blockmrs tests and
# benchmarks compare against, into a per-user cache:
#
#   ipfs               Kubo (the reference IPFS node)
#   age, age-keygen    the reference age encryption tools
#
# Everything comes from the Go module proxy; nothing is installed by hand.
# The script is idempotent: a tool is rebuilt only when its binary is missing
# or its stamp file records a different recipe. Concurrent callers (several
# test packages at once) serialise on a flock and then find the work done.
#
# Cache dir: ${BLOCKMRS_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/blockmrs-tools}
# Output:    logs on stderr; the bin dir as the last line of stdout.
set -euo pipefail

KUBO_MOD=github.com/ipfs/kubo
KUBO_VERSION=v0.43.0
# Kubo v0.43.0 pins a swiss version that fails on Go 1.26 ("undefined:
# hashFn"). This is the version @latest resolved to when the recipe was
# written (and the one blockmrs's own go.mod uses); pinned for repeatability.
SWISS_MOD=github.com/cockroachdb/swiss
SWISS_VERSION=v0.0.0-20260820225851-333444432258
AGE_MOD=filippo.io/age
AGE_VERSION=v1.3.2

# Bump when the build recipe changes in a way that should force a rebuild.
RECIPE=1

cache="${BLOCKMRS_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/blockmrs-tools}"
bin="$cache/bin"
stamps="$cache/stamps"

log() { printf 'stock-tools: %s\n' "$*" >&2; }

command -v go >/dev/null || { log "go not found in PATH"; exit 1; }
command -v flock >/dev/null || { log "flock not found in PATH (util-linux)"; exit 1; }

mkdir -p "$bin" "$stamps"

# One builder at a time; others block here, then see fresh stamps and skip.
exec 9>"$cache/lock"
flock 9

# Isolate the builds from whatever module/workspace the caller runs in.
export GOWORK=off
# Drop any -mod=... from the caller's GOFLAGS (go get rejects some values);
# the build below passes -mod=mod explicitly.
goflags=""
for f in ${GOFLAGS:-}; do
	case "$f" in -mod=*) ;; *) goflags="$goflags $f" ;; esac
done
export GOFLAGS="${goflags# }"

go_version="$(go env GOVERSION)"

# stamp_ok NAME WANT BINARY...: true when every binary exists and the stamp
# for NAME holds exactly WANT.
stamp_ok() {
	local name="$1" want="$2"
	shift 2
	local b
	for b in "$@"; do
		[[ -x "$bin/$b" ]] || return 1
	done
	[[ -f "$stamps/$name" ]] && [[ "$(cat "$stamps/$name")" == "$want" ]]
}

# fetch_module MOD VERSION DEST: downloads MOD@VERSION through the module proxy
# and copies its (read-only) module cache folder to DEST, made writable.
fetch_module() {
	local mod="$1" version="$2" dest="$3" json dir
	json="$(cd "$(dirname "$dest")" && go mod download -json "$mod@$version")" || {
		log "go mod download $mod@$version failed:"
		printf '%s\n' "$json" >&2
		return 1
	}
	dir="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
	if [[ -z "$dir" || ! -d "$dir" ]]; then
		log "go mod download $mod@$version gave no Dir:"
		printf '%s\n' "$json" >&2
		return 1
	fi
	cp -R "$dir" "$dest"
	chmod -R u+w "$dest"
	# A toolchain line newer than the local Go would make GOTOOLCHAIN=auto
	# fetch a whole toolchain; the go line alone is the real minimum.
	sed -i '/^toolchain /d' "$dest/go.mod"
}

# Temporary build dirs live inside the cache so the final mv is a rename on
# one filesystem (atomic). Stale ones from killed runs are removed here,
# safely, because we hold the lock.
work=""
cleanup() {
	if [[ -n "$work" && -d "$work" ]]; then
		chmod -R u+w "$work" 2>/dev/null || true
		rm -rf "$work"
	fi
}
trap cleanup EXIT
for stale in "$cache"/build.*; do
	[[ -d "$stale" ]] || continue
	chmod -R u+w "$stale" 2>/dev/null || true
	rm -rf "$stale"
done

build_kubo() {
	local want="kubo $KUBO_VERSION swiss $SWISS_VERSION $go_version recipe $RECIPE"
	if stamp_ok ipfs "$want" ipfs; then
		log "ipfs up to date ($KUBO_VERSION)"
		return
	fi
	log "building ipfs (Kubo $KUBO_VERSION) with $go_version, takes a minute or two..."
	local start=$SECONDS
	work="$(mktemp -d "$cache/build.XXXXXX")"
	fetch_module "$KUBO_MOD" "$KUBO_VERSION" "$work/src"
	(
		cd "$work/src"
		go get "$SWISS_MOD@$SWISS_VERSION" >&2
		# Blank the built-in telemetry endpoint (Kubo's documented way to
		# build a node that never reports anywhere); everything else stock.
		go build -mod=mod -trimpath \
			-ldflags "-X github.com/ipfs/kubo/plugin/plugins/telemetry.defaultEndpoint=" \
			-o "$work/out/ipfs" ./cmd/ipfs >&2
	)
	"$work/out/ipfs" version >&2
	mv -f "$work/out/ipfs" "$bin/ipfs"
	printf '%s\n' "$want" >"$stamps/ipfs.tmp"
	mv -f "$stamps/ipfs.tmp" "$stamps/ipfs"
	cleanup
	work=""
	log "ipfs built in $((SECONDS - start))s"
}

build_age() {
	local want="age $AGE_VERSION $go_version recipe $RECIPE"
	if stamp_ok age "$want" age age-keygen; then
		log "age, age-keygen up to date ($AGE_VERSION)"
		return
	fi
	log "building age, age-keygen ($AGE_VERSION) with $go_version..."
	local start=$SECONDS
	work="$(mktemp -d "$cache/build.XXXXXX")"
	fetch_module "$AGE_MOD" "$AGE_VERSION" "$work/src"
	mkdir -p "$work/out"
	(
		cd "$work/src"
		# Built from a copy, the main module reports "(devel)"; give
		# --version the real release instead.
		go build -mod=mod -trimpath \
			-ldflags "-X main.Version=$AGE_VERSION" \
			-o "$work/out/" ./cmd/age ./cmd/age-keygen >&2
	)
	"$work/out/age" --version >&2
	mv -f "$work/out/age" "$bin/age"
	mv -f "$work/out/age-keygen" "$bin/age-keygen"
	printf '%s\n' "$want" >"$stamps/age.tmp"
	mv -f "$stamps/age.tmp" "$stamps/age"
	cleanup
	work=""
	log "age, age-keygen built in $((SECONDS - start))s"
}

build_age
build_kubo

printf '%s\n' "$bin"
