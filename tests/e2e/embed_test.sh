#!/usr/bin/env bash
# The embedding API from outside: install into a scratch prefix, build examples/embed with
# find_package(postformer) against it, run it on a tiny trained model. The example checks
# that a fork and a restored state continue exactly as the original session.
# Usage: embed_test.sh PATH_TO_postformer BUILD_DIR SOURCE_DIR
set -euo pipefail
BIN="$1"
BUILD="$2"
SRC="$3"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

for i in $(seq 1 200); do echo "In the beginning was the word, line $i."; done > "$TMP/text.txt"
"$BIN" train --data "$TMP/text.txt" --out "$TMP/run" --arch mamba --d-model 32 --layers 2 \
  --seq 32 --batch 4 --steps 2 --eval-every 2 --eval-batches 1 --val-fraction 0.1 --threads 2 > "$TMP/train.log"
MODEL="$TMP/run/$(cat "$TMP/run/latest")"

cmake --install "$BUILD" --prefix "$TMP/prefix" > "$TMP/install.log" || fail "install failed"
[ -f "$TMP/prefix/include/postformer/postformer.h" ] || fail "header not installed"
ls "$TMP"/prefix/lib*/cmake/postformer/postformerConfig.cmake > /dev/null || fail "no package config"
cmake -S "$SRC/examples/embed" -B "$TMP/build" -G Ninja -DCMAKE_PREFIX_PATH="$TMP/prefix" \
  > "$TMP/configure.log" 2>&1 || { cat "$TMP/configure.log"; fail "example configure failed"; }
cmake --build "$TMP/build" > "$TMP/build.log" 2>&1 || { cat "$TMP/build.log"; fail "example build failed"; }
# The example needs only its header: no engine symbol leaks out of the library.
if nm -DC --defined-only "$TMP"/prefix/lib*/libpostformer.so | grep -q " pf::"; then
  fail "libpostformer.so exports engine symbols"
fi
(cd "$TMP" && "$TMP/build/embed_demo" "$MODEL" "In the beginning" 32) > "$TMP/demo.log" 2>&1 \
  || { cat "$TMP/demo.log"; fail "embed_demo failed"; }
grep -q "fork continues identically: yes" "$TMP/demo.log" || fail "fork"
grep -q "restored state continues identically: yes" "$TMP/demo.log" || fail "restore"
grep -q "^model: mamba" "$TMP/demo.log" || fail "model line"
echo "embed: ok"
