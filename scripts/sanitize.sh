#!/usr/bin/env bash
# Sanitizer and fuzzing checks. Builds build-asan/ with clang (AddressSanitizer +
# UndefinedBehaviorSanitizer, every report fatal, libFuzzer targets), then runs under the
# sanitizers: all unit tests, every model test except the four Archs/DefaultCorpus and the
# short classification training runs (250 steps each: minutes under ASan; the release suite
# runs them), the serve tests, the CLI, classify and compare end-to-end tests, and each
# fuzzer over its seed corpus plus FUZZ_SECONDS of fuzzing.
# Usage: bash scripts/sanitize.sh [FUZZ_SECONDS]   (default 10; 600 for a full session)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
# The CLI's own code at -O0: under ASan it compiles in half the time of -O1, and the library
# code it drives keeps -O1 (tests too: their references would run 2x slower).
CC=clang CXX=clang++ cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Release -DPF_FUZZ=ON \
  -DPF_BUILD_BENCH=OFF -DPF_CLI_OPT=-O0 > /dev/null
ninja -C build-asan -j "$(nproc)"
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
echo "sanitize: unit tests"
build-asan/pf_unit_tests --gtest_brief=1
echo "sanitize: model tests (all but Archs/DefaultCorpus.* and ClassifyTraining.ShortRuns*)"
build-asan/pf_model_tests --gtest_brief=1 --gtest_filter='-Archs/DefaultCorpus.*:ClassifyTraining.ShortRuns*'
echo "sanitize: serve tests (HTTP on loopback, sessions, limits, 32-stream load)"
build-asan/pf_serve_tests --gtest_brief=1
echo "sanitize: CLI end to end"
bash tests/e2e/cli_test.sh "$PWD/build-asan/postformer" "$PWD"
echo "sanitize: classify end to end"
bash tests/e2e/classify_test.sh "$PWD/build-asan/postformer" "$PWD"
echo "sanitize: compare end to end"
bash tests/e2e/compare_test.sh "$PWD/build-asan/postformer" "$PWD/build-asan/check_compare" "$PWD"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for f in build-asan/fuzz_*; do
  name=$(basename "$f")
  corpus=tests/fuzz/corpus/${name#fuzz_}
  mkdir -p "$work/$name"
  # New inputs go to the scratch directory; the committed seeds are only read.
  if ! "$f" -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -artifact_prefix="$work/" -print_final_stats=1 \
      "$work/$name" "$corpus" > "$work/$name.log" 2>&1; then
    tail -40 "$work/$name.log"
    echo "sanitize: $name failed; the input is in the log above" >&2
    exit 1
  fi
  echo "sanitize: $name clean ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/$name.log" || grep -o '#[0-9]* *DONE' "$work/$name.log" | head -1))"
done
echo "sanitize: all clean"
