#!/usr/bin/env bash
# Set up, build and run every test: the sanitizer build (ASan + UBSan over the unit, model
# and CLI tests, each fuzzer briefly over its corpus; see scripts/sanitize.sh), then the
# release build's whole suite through ctest, crash tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
bash scripts/sanitize.sh "${PF_FUZZ_SECONDS:-10}"
cd build
ctest --output-on-failure -j 1 --timeout 900
