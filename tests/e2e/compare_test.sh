#!/usr/bin/env bash
# End-to-end: a tiny `compare` of every architecture writes every artefact with plausible
# numbers, renders in headless Chromium, resumes after being killed, refuses a foreign
# --out, compares against an earlier report, and `plot` draws runs.
# Usage: compare_test.sh PATH_TO_postformer PATH_TO_check_compare SOURCE_DIR
set -euo pipefail
BIN="$1"
CHECK="$2"
SRC="$3"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

head -c 300000 "$SRC/data/kjv.txt" > "$TMP/text.txt"
ARCHS=transformer,mamba,mamba2,retnet,hybrid,perceiver-ar
CTX=32,256
args=(--data "$TMP/text.txt" --archs "$ARCHS" --params 120k --depth 2 --steps 12 --batch 4
      --seq 64 --contexts "$CTX" --decode-steps 2 --prefill-tokens 128 --eval-batches 2
      --threads 2)

# Killed once the first architecture is done, then run again: it resumes.
"$BIN" compare "${args[@]}" --out "$TMP/cmp" > "$TMP/first.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  [ -f "$TMP/cmp/results/transformer.json" ] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
[ -f "$TMP/cmp/results/transformer.json" ] || { cat "$TMP/first.log"; fail "the first arch never finished"; }
"$BIN" compare "${args[@]}" --out "$TMP/cmp" > "$TMP/compare.log" 2>&1 || { cat "$TMP/compare.log"; fail "compare failed"; }
grep -q "resuming the compare" "$TMP/compare.log" || fail "the second run did not resume"
grep -q "transformer: done earlier" "$TMP/compare.log" || fail "the finished arch ran again"
grep -q "report: " "$TMP/compare.log" || fail "no report path printed"
grep -q "perceiver-ar scores only its latents: 48 steps" "$TMP/compare.log" \
  || fail "Perceiver AR does not get the same tokens with a loss"
"$CHECK" "$TMP/cmp" "$ARCHS" "$CTX"

# Rendered by a browser, every plot loads.
bash "$SRC/tests/e2e/report_html_test.sh" "$TMP/cmp"

# Against itself: every figure equal, no regression.
cp "$TMP/cmp/results.json" "$TMP/old.json"
"$BIN" compare "${args[@]}" --out "$TMP/cmp" --against "$TMP/old.json" > "$TMP/against.log" 2>&1 \
  || { cat "$TMP/against.log"; fail "compare --against failed"; }
grep -q "0 regressions" "$TMP/against.log" || fail "--against flagged a regression against itself"

# Other settings in the same --out are refused without --overwrite; foreign dirs always.
if "$BIN" compare "${args[@]}" --lr 1e-3 --out "$TMP/cmp" > "$TMP/o.log" 2>&1; then
  fail "a compare with other settings reused --out"
fi
grep -q "other settings" "$TMP/o.log" || fail "no clear message for other settings"
mkdir "$TMP/mine" && echo keep > "$TMP/mine/notes.txt"
if "$BIN" compare "${args[@]}" --out "$TMP/mine" > "$TMP/m.log" 2>&1; then fail "foreign --out used"; fi
[ "$(cat "$TMP/mine/notes.txt")" = keep ] || fail "a user's file was touched"
"$BIN" compare --data "$TMP/text.txt" --params 2x --out "$TMP/x" > "$TMP/p.log" 2>&1 && fail "--params 2x accepted"
grep -q "is not a number" "$TMP/p.log" || fail "no clear message for --params"

# --tasks: every task trains and is scored; the report gains its tables and two plots.
"$BIN" compare --data "$TMP/text.txt" --archs transformer,mamba,perceiver-ar --params 120k --depth 2 \
  --steps 4 --batch 4 --seq 64 --contexts 32,64 --decode-steps 2 --prefill-tokens 64 --tasks \
  --task-steps 8 --task-length 128 --task-lengths 128,256 --mqar-length 64 --mqar-vocab 128 \
  --mqar-pairs 4,8 --task-sequences 8 --threads 2 --out "$TMP/tasks" > "$TMP/tasks.log" 2>&1 \
  || { cat "$TMP/tasks.log"; fail "compare --tasks failed"; }
for f in task_accuracy.png mqar_accuracy.png; do [ -s "$TMP/tasks/$f" ] || fail "no $f"; done
grep -q "## Task: induction" "$TMP/tasks/report.md" || fail "no induction table"
grep -q "mqar length     64 pairs   8: accuracy" "$TMP/tasks.log" || fail "no MQAR score"
bash "$SRC/tests/e2e/report_html_test.sh" "$TMP/tasks"

# plot: training curves of several runs into one PNG.
"$BIN" plot "$TMP/cmp/runs/transformer" "$TMP/cmp/runs/mamba" --out "$TMP/curves.png" > /dev/null
[ "$(head -c 4 "$TMP/curves.png" | od -An -c | tr -d ' ')" = "211PNG" ] || fail "plot wrote no PNG"
"$BIN" plot "$TMP/nowhere" --out "$TMP/x.png" > "$TMP/np.log" 2>&1 && fail "plot of a missing run"
grep -q "does not exist" "$TMP/np.log" || fail "plot: no clear message for a missing run"
echo "compare_test: ok"
