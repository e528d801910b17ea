#!/usr/bin/env bash
# Crash tests of the checkpoint writer. PF_CRASH_AT_FILE_OP=N kills the trainer (SIGKILL) at
# its N-th file operation. We kill a run at every operation of every save, and at every
# pair (one in a save that replaces a checkpoint, one in the resumed run's next save). After
# each crash, once any save has completed, `info` and `eval` must load the latest checkpoint
# and `--resume` must finish bit-identical to an uninterrupted run; no temporary file may
# remain once a run ends normally.
# Usage: crash_test.sh PATH_TO_postformer [--pairs all|N]  (N: every N-th second crash point)
set -euo pipefail
BIN="$1"
PAIRS="${3:-all}"  # $2 is the literal --pairs
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$TMP"

for i in $(seq 1 300); do echo "Crash test line $i: the quick brown fox."; done > text.txt
echo "the quick brown fox" > eval.txt
train=(train --data text.txt --d-model 16 --layers 1 --heads 2 --seq 16 --batch 2 --context 32
       --threads 1 --steps 4 --save-every 2 --eval-every 0 --eval-batches 1 --log-every 100)

"$BIN" "${train[@]}" --out ref > /dev/null
ref=ref/$(cat ref/latest)

# Every file of a finished run: the marker, `latest`, metrics.jsonl, and one checkpoint with
# its 4 files.
check_clean() {
  local dir=$1
  local extra
  extra=$(find "$dir" -mindepth 1 | grep -v -E "^$dir/(\.postformer-run|latest|metrics\.jsonl|step-[0-9.]+(/(config\.json|model\.safetensors|optimizer\.safetensors|trainer_state\.json))?)$" || true)
  [ -z "$extra" ] || fail "stray files after a finished run in $dir: $extra"
  [ "$(find "$dir" -mindepth 1 -maxdepth 1 -name 'step-*' | wc -l)" -eq 1 ] ||
    fail "$dir holds more than one checkpoint"
}

same_as_ref() {
  local dir=$1 what=$2
  local got
  got=$dir/$(cat "$dir/latest")
  for f in model.safetensors optimizer.safetensors trainer_state.json; do
    cmp -s "$ref/$f" "$got/$f" || fail "$what: $f differs from the uninterrupted run"
  done
  check_clean "$dir"
}

# Runs the command expecting the injected kill (exit 137) at op $1; echoes 0 when the
# command instead finished (the op count is past its last operation).
run_killed_at() {
  local op=$1
  shift
  set +e
  PF_CRASH_AT_FILE_OP=$op "$BIN" "$@" > /dev/null 2> "$TMP/killed.err"
  local rc=$?
  set -e
  if [ $rc -eq 0 ]; then echo 0; return; fi
  [ $rc -eq 137 ] || { cat "$TMP/killed.err" >&2; fail "op $op: exit $rc, expected the injected kill"; }
  echo 1
}

# Continues a crashed run to the end and checks it equals the uninterrupted one.
resume_and_check() {
  local dir=$1 what=$2
  "$BIN" info --model "$dir" > /dev/null 2> "$TMP/info.err" || { cat "$TMP/info.err" >&2; fail "$what: info cannot load"; }
  "$BIN" eval --model "$dir" --data eval.txt --threads 1 > /dev/null 2> "$TMP/eval.err" || { cat "$TMP/eval.err" >&2; fail "$what: eval cannot load"; }
  "$BIN" "${train[@]}" --resume "$dir" > /dev/null 2> "$TMP/resume.err" || { cat "$TMP/resume.err" >&2; fail "$what: resume failed"; }
  same_as_ref "$dir" "$what"
}

# Where each save starts and when the first checkpoint becomes the latest, from a trace.
PF_TRACE_FILE_OPS=1 "$BIN" "${train[@]}" --out traced > /dev/null 2> trace.txt
total=$(grep -c '^file-op ' trace.txt)
first_done=$(grep -m1 -E '^file-op [0-9]+ rename (.*/)?traced/latest$' trace.txt | awk '{print $2}')
second_save=$(grep -E '^file-op [0-9]+ create-dir ' trace.txt | sed -n 2p | awk '{print $2}')
[ -n "$first_done" ] && [ -n "$second_save" ] || fail "trace lacks the expected operations"

singles=0
for op in $(seq 1 "$total"); do
  rm -rf run
  [ "$(run_killed_at "$op" "${train[@]}" --out run)" = 1 ] || fail "op $op of $total did not kill"
  if [ "$op" -gt "$first_done" ]; then
    resume_and_check run "single crash at op $op"
  else
    # No checkpoint was complete yet: nothing loads, and the same command starts over.
    if "$BIN" info --model run > /dev/null 2>&1; then fail "op $op: a partial checkpoint loads"; fi
    "$BIN" "${train[@]}" --out run > /dev/null || fail "op $op: rerun refused after an early crash"
    same_as_ref run "rerun after a crash at op $op"
  fi
  singles=$((singles + 1))
done
[ "$(run_killed_at $((total + 1)) "${train[@]}" --out past)" = 0 ] || fail "more ops than traced"

# Pairs: a crash in the save that replaces the step-2 checkpoint, then one in the resumed
# run's own save of step 4 (after any clean-up it does of the first crash's leftovers).
pairs=0
stride=1
[ "$PAIRS" = all ] || stride=$PAIRS
for op1 in $(seq "$second_save" "$total"); do
  rm -rf first
  [ "$(run_killed_at "$op1" "${train[@]}" --out first)" = 1 ] || fail "op $op1 did not kill"
  rm -rf probe && cp -a first probe
  PF_TRACE_FILE_OPS=1 "$BIN" "${train[@]}" --resume probe > /dev/null 2> probe.txt
  ops2=$(grep -c '^file-op ' probe.txt)
  for op2 in $(seq 1 "$stride" "$ops2"); do
    rm -rf second && cp -a first second
    [ "$(run_killed_at "$op2" "${train[@]}" --resume second)" = 1 ] ||
      fail "second crash at op $op2 of $ops2 did not kill"
    resume_and_check second "crashes at op $op1, then at op $op2 of the resumed run"
    pairs=$((pairs + 1))
  done
done
echo "crash tests: $singles single crashes and $pairs pairs, every one recovered bit-exactly"
