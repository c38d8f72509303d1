#!/usr/bin/env bash
# The project's test command: everything CI runs, from a clean checkout.
# It installs Debian's chromium for the web app's browser test when it is
# missing and we are root (if that fails, the browser test fails: it
# never skips), builds the stock tools the interop tests compare against (Kubo and
# age, into a cache folder; see scripts/stock-tools.sh), checks formatting
# and vet, runs every test with the race detector, then runs the large
# interop cases (which -short leaves out, since they move gigabytes and
# the race detector would only make them slow) without it.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== chromium (browser tests)" >&2
if [ ! -x /usr/bin/chromium ]; then
	if [ "$(id -u)" = 0 ]; then
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -qq chromium >/dev/null 2>&1 ||
			{ apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; } ||
			echo "apt-get could not install chromium: the browser test will fail" >&2
	else
		echo "/usr/bin/chromium is missing and we are not root: the browser test will fail (apt-get install chromium)" >&2
	fi
fi

echo "== stock tools" >&2
scripts/stock-tools.sh >/dev/null

echo "== gofmt" >&2
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "gofmt: these files need formatting:" >&2
	echo "$unformatted" >&2
	exit 1
fi

echo "== go vet" >&2
go vet ./...

echo "== go test -race -short" >&2
go test -race -short -count=1 -timeout 20m ./...

echo "== large cases (no race detector)" >&2
go test -count=1 -timeout 20m -run 'Large' ./...
