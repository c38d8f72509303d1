#!/usr/bin/env bash
# The project's test command: everything CI runs, from a clean checkout.
# It builds the stock tools the interop tests compare against (Kubo and
# age, into a cache folder; see scripts/stock-tools.sh), checks formatting
# and vet, runs every test with the race detector, then runs the large
# interop cases (which -short leaves out, since they move gigabytes and
# the race detector would only make them slow) without it.
set -euo pipefail
cd "$(dirname "$0")/.."

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
