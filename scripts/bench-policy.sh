#!/usr/bin/env bash
# Access-policy benchmarks on the clinic repo builder (keyshare/
# clinic_bench_test.go) at 1,000, 10,000 and 100,000 records: one want's
# decision (permitted, refused, unknown peer, replica, grantee, chain
# block), the chains a connecting peer is entitled to, and what one chain
# change costs WantedRecords and DropRevoked. Writes the raw output to
# docs/bench-policy.txt and the growth plot to docs/bench-policy.svg.
set -euo pipefail
cd "$(dirname "$0")/.."
go test -run '^$' -bench 'Clinic' -benchtime "${BENCHTIME:-1s}" -timeout 60m ./keyshare | tee docs/bench-policy.txt
go run ./internal/cmd/benchplot -o docs/bench-policy.svg < docs/bench-policy.txt
echo "plot: docs/bench-policy.svg" >&2
