#!/usr/bin/env bash
# Runs the ingestion benchmark on the release build (see docs/BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
make build >/dev/null
exec python3 bench/ingest.py "$@"
