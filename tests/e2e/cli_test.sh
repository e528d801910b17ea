#!/usr/bin/env bash
# End-to-end: the CLI trains, resumes, generates, evaluates, inspects, and fails cleanly.
# Usage: cli_test.sh PATH_TO_postformer SOURCE_DIR
set -euo pipefail
BIN="$1"
SRC="$2"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# The newest checkpoint inside a run directory.
ck() { echo "$1/$(cat "$1/latest")"; }

for i in $(seq 1 400); do echo "In the beginning was the word, line $i."; done > "$TMP/text.txt"

small=(--d-model 32 --layers 2 --heads 2 --seq 32 --batch 4 --context 64 --threads 2)
"$BIN" train --data "$TMP/text.txt" --out "$TMP/run" "${small[@]}" --steps 3 --eval-every 3 \
  --eval-batches 1 --log-every 1 > "$TMP/train.log"
grep -q "step     3/3" "$TMP/train.log" || fail "no progress line"
grep -q "bits per byte" "$TMP/train.log" || fail "no bits per byte"
for f in config.json model.safetensors optimizer.safetensors trainer_state.json; do
  [ -s "$(ck "$TMP/run")/$f" ] || fail "checkpoint lacks $f"
done

"$BIN" train --data "$TMP/text.txt" --resume "$TMP/run" --steps 5 --log-every 1 > "$TMP/resume.log"
grep -q "resumed from .* at step 3" "$TMP/resume.log" || fail "resume did not start at step 3"
grep -q "step     5/5" "$TMP/resume.log" || fail "resume did not reach step 5"

"$BIN" generate --model "$TMP/run" --prompt "In the" --max-tokens 12 --print-ids > "$TMP/ids.txt"
[ "$(grep -c . "$TMP/ids.txt")" -eq 12 ] || fail "expected 12 generated ids"
"$BIN" generate --model "$TMP/run" --prompt "In the" --max-tokens 5 --temperature 0 > /dev/null

printf 'In the beginning' > "$TMP/eval.txt"
"$BIN" eval --model "$TMP/run" --data "$TMP/eval.txt" --logprobs "$TMP/lp.txt" > "$TMP/eval.log"
grep -q "bits per byte" "$TMP/eval.log" || fail "eval printed no bits per byte"
[ "$(wc -l < "$TMP/lp.txt")" -eq 15 ] || fail "expected 15 log-probabilities"
echo "73 110 32 116 104 101" > "$TMP/toks.txt"
"$BIN" eval --model "$TMP/run" --tokens "$TMP/toks.txt" | grep -q "perplexity" || fail "token eval"

"$BIN" info --model "$TMP/run" --at-context 64 | grep -q "parameters:" || fail "info"
"$BIN" --help | grep -q train || fail "help"
# Low-precision weights: quantize writes a directory that loads with no flag; --weights
# converts on load; quantize never writes into a directory it did not make.
for to in bf16 int8; do
  "$BIN" quantize --model "$TMP/run" --to $to --out "$TMP/q_$to" > "$TMP/q.log"
  grep -q "to $to" "$TMP/q.log" || fail "quantize --to $to printed no summary"
  "$BIN" info --model "$TMP/q_$to" | grep -q "weights: *$to" || fail "info does not show $to"
  "$BIN" eval --model "$TMP/q_$to" --data "$TMP/eval.txt" | grep -q "bits per byte" ||
    fail "eval of the $to directory"
  "$BIN" eval --model "$TMP/run" --weights $to --data "$TMP/eval.txt" | grep -q "bits per byte" ||
    fail "eval --weights $to"
done
"$BIN" generate --model "$TMP/q_int8" --prompt "In the" --max-tokens 4 --print-ids > /dev/null
mkdir -p "$TMP/foreign" && echo keep > "$TMP/foreign/notes.txt"
if "$BIN" quantize --model "$TMP/run" --to int8 --out "$TMP/foreign" 2> "$TMP/q.err"; then
  fail "quantize wrote into a foreign directory"
fi
grep -q "not empty" "$TMP/q.err" || fail "quantize: no reason for refusing --out"
[ "$(cat "$TMP/foreign/notes.txt")" = keep ] || fail "quantize touched a foreign file"
if "$BIN" import-gguf --gguf "$TMP/eval.txt" --out "$TMP/g" 2> "$TMP/g.err"; then
  fail "import-gguf accepted a text file"
fi
grep -q "not a GGUF file\|too short" "$TMP/g.err" || fail "import-gguf: no reason given"
"$BIN" info --model "$TMP/run" | grep -q "instruction sets:" || fail "info shows no instruction sets"

"$BIN" train --help | grep -q -- "--time-limit" || fail "train help"

# Transfer learning: fine-tune into a new directory; the original stays loadable.
for i in $(seq 1 300); do echo "The quick brown fox jumps over the lazy dog number $i."; done > "$TMP/new.txt"
"$BIN" train --init-from "$TMP/run" --data "$TMP/new.txt" --out "$TMP/ft" --steps 3 --eval-every 3 \
  --eval-batches 1 --batch 4 --seq 32 > "$TMP/ft.log"
grep -q "initialised from" "$TMP/ft.log" || fail "init-from did not load"
[ -s "$(ck "$TMP/ft")/model.safetensors" ] || fail "fine-tuned model not written"
"$BIN" info --model "$TMP/run" > /dev/null || fail "original no longer loads"
if "$BIN" train --init-from "$TMP/run" --data "$TMP/new.txt" --out "$TMP/run" --steps 1 2> "$TMP/err.txt"; then
  fail "init-from allowed overwriting the original"
fi
grep -q "must differ" "$TMP/err.txt" || fail "overwrite message"

# Saved state continues exactly like an uninterrupted run.
"$BIN" generate --model "$TMP/run" --prompt "In the" --max-tokens 6 --temperature 0 --print-ids > "$TMP/full.txt"
"$BIN" generate --model "$TMP/run" --prompt "In the" --max-tokens 0 --save-state "$TMP/s.st" > /dev/null
"$BIN" generate --model "$TMP/run" --load-state "$TMP/s.st" --max-tokens 6 --temperature 0 --print-ids > "$TMP/cont.txt"
cmp -s "$TMP/full.txt" "$TMP/cont.txt" || fail "load-state continuation differs: $(tr '\n' ' ' < "$TMP/full.txt") vs $(tr '\n' ' ' < "$TMP/cont.txt")"

# Mamba, Mamba-2 and RetNet: train, stream with a Hugging Face BPE tokenizer, O(1) state, save/load.
for arch in mamba mamba2 retnet; do
  "$BIN" train --arch $arch --vocab 272 --d-model 32 --layers 2 --heads 2 --d-state 8 --headdim 16 \
    --data "$TMP/text.txt" --out "$TMP/$arch" --seq 32 --batch 4 --steps 3 --eval-every 3 \
    --eval-batches 1 > "$TMP/$arch.log" || fail "$arch training"
  cp "$SRC/tests/data/tiny_bpe/tokenizer.json" "$(ck "$TMP/$arch")/"
  out=$("$BIN" generate --model "$TMP/$arch" --prompt "the land of" --max-tokens 8 --seed 2)
  case "$out" in "the land of"*) ;; *) fail "$arch generate printed: $out" ;; esac
  "$BIN" generate --model "$TMP/$arch" --prompt "and the" --max-tokens 6 --temperature 0 --print-ids > "$TMP/f.txt"
  "$BIN" generate --model "$TMP/$arch" --prompt "and the" --max-tokens 0 --save-state "$TMP/$arch.st" > /dev/null
  "$BIN" generate --model "$TMP/$arch" --load-state "$TMP/$arch.st" --max-tokens 6 --temperature 0 --print-ids > "$TMP/c.txt"
  cmp -s "$TMP/f.txt" "$TMP/c.txt" || fail "$arch load-state continuation differs"
  a=$("$BIN" info --model "$TMP/$arch" --at-context 128 | grep "inference state" | sed 's/.*(\(.*\) bytes)/\1/')
  b=$("$BIN" info --model "$TMP/$arch" --at-context 1000000 | grep "inference state" | sed 's/.*(\(.*\) bytes)/\1/')
  [ -n "$a" ] && [ "$a" = "$b" ] || fail "$arch state size depends on context: $a vs $b"
  # Fine-tuning keeps the tokenizer and the layout.
  "$BIN" train --init-from "$TMP/$arch" --data "$TMP/new.txt" --out "$TMP/$arch-ft" --steps 2 \
    --eval-every 2 --eval-batches 1 --batch 4 --seq 32 > /dev/null || fail "$arch fine-tune"
  [ -s "$(ck "$TMP/$arch-ft")/tokenizer.json" ] || fail "$arch fine-tune lost the tokenizer"
  grep -q "\"model_type\": \"$arch\"" "$(ck "$TMP/$arch-ft")/config.json" || fail "$arch fine-tune changed layout"
done

# Hybrids: --arch hybrid --pattern trains, generates, saves and loads state, evaluates,
# fine-tunes and shows its layers; the shipped example configs build.
"$BIN" train --arch hybrid --pattern MARS --d-model 32 --heads 2 --d-state 8 --headdim 16 \
  --data "$TMP/text.txt" --out "$TMP/hybrid" --seq 32 --batch 4 --steps 3 --eval-every 3 \
  --eval-batches 1 --context 128 > "$TMP/hybrid.log" || fail "hybrid training"
"$BIN" generate --model "$TMP/hybrid" --prompt "In the" --max-tokens 6 --temperature 0 --print-ids > "$TMP/f.txt"
"$BIN" generate --model "$TMP/hybrid" --prompt "In the" --max-tokens 0 --save-state "$TMP/h.st" > /dev/null
"$BIN" generate --model "$TMP/hybrid" --load-state "$TMP/h.st" --max-tokens 6 --temperature 0 --print-ids > "$TMP/c.txt"
cmp -s "$TMP/f.txt" "$TMP/c.txt" || fail "hybrid load-state continuation differs"
"$BIN" eval --model "$TMP/hybrid" --data "$TMP/eval.txt" | grep -q "bits per byte" || fail "hybrid eval"
"$BIN" info --model "$TMP/hybrid" | grep -q "layers: *MARS" || fail "hybrid info lacks the pattern"
"$BIN" info --model "$TMP/hybrid" | grep -q "retention memory per head" || fail "hybrid info lacks retention memory"
"$BIN" train --init-from "$TMP/hybrid" --data "$TMP/new.txt" --out "$TMP/hybrid-ft" --steps 2 \
  --eval-every 2 --eval-batches 1 --batch 4 --seq 32 > /dev/null || fail "hybrid fine-tune"
grep -q '"pattern": "MARS"' "$(ck "$TMP/hybrid-ft")/config.json" || fail "hybrid fine-tune changed layers"
# Perceiver AR: --context L --latents M trains on windows of L, generates past its window
# (the window slides), saves and loads state mid-window, evaluates, fine-tunes, shows itself.
"$BIN" train --arch perceiver-ar --context 64 --latents 16 --d-model 32 --heads 2 --val-fraction 0.2 \
  --data "$TMP/text.txt" --out "$TMP/par" --seq 64 --batch 4 --steps 3 --eval-every 3 \
  --eval-batches 1 > "$TMP/par.log" || fail "perceiver-ar training"
"$BIN" generate --model "$TMP/par" --prompt "In the" --max-tokens 150 --temperature 0 --print-ids > "$TMP/f.txt"
[ "$(wc -w < "$TMP/f.txt")" -ge 150 ] || fail "perceiver-ar generation stopped at its window"
"$BIN" generate --model "$TMP/par" --prompt "In the beginning God created the heaven and the earth. And the earth" \
  --max-tokens 0 --save-state "$TMP/p.st" > /dev/null
"$BIN" generate --model "$TMP/par" --load-state "$TMP/p.st" --max-tokens 90 --temperature 0 --print-ids > "$TMP/c.txt"
"$BIN" generate --model "$TMP/par" --prompt "In the beginning God created the heaven and the earth. And the earth" \
  --max-tokens 90 --temperature 0 --print-ids > "$TMP/d.txt"
cmp -s "$TMP/c.txt" "$TMP/d.txt" || fail "perceiver-ar load-state continuation differs"
"$BIN" eval --model "$TMP/par" --data "$TMP/eval.txt" | grep -q "bits per byte" || fail "perceiver-ar eval"
"$BIN" info --model "$TMP/par" | grep -q "16 latents" || fail "perceiver-ar info lacks its latents"
"$BIN" train --init-from "$TMP/par" --data "$TMP/new.txt" --out "$TMP/par-ft" --steps 2 \
  --eval-every 2 --eval-batches 1 --batch 2 --seq 64 --val-fraction 0.3 > /dev/null || fail "perceiver-ar fine-tune"
if "$BIN" info --arch transformer --latents 8 2> "$TMP/err.txt"; then fail "--latents without perceiver-ar"; fi
grep -q -- "--latents is for --arch perceiver-ar" "$TMP/err.txt" || fail "latents message: $(cat "$TMP/err.txt")"
if "$BIN" info --arch perceiver-ar --context 64 --latents 65 2> "$TMP/err.txt"; then fail "latents > context"; fi
grep -q -- "--latents" "$TMP/err.txt" || fail "latents range message: $(cat "$TMP/err.txt")"
for c in "$SRC"/configs/*.json; do
  "$BIN" info --config "$c" | grep -q "^layers:" || fail "config $c does not build"
done
"$BIN" train --config "$SRC/configs/jamba-small.json" --data "$TMP/text.txt" --out "$TMP/jamba" \
  --seq 32 --batch 2 --steps 1 --eval-every 1 --eval-batches 1 > /dev/null || fail "jamba config training"
if "$BIN" train --arch hybrid --pattern MXA --data "$TMP/text.txt" --out "$TMP/bad" 2> "$TMP/err.txt"; then
  fail "accepted a bad pattern"
fi
grep -q "pattern letter 'X'" "$TMP/err.txt" || fail "bad pattern message: $(cat "$TMP/err.txt")"
if "$BIN" info --arch hybrid 2> "$TMP/err.txt"; then fail "hybrid without a pattern"; fi
grep -q -- "--pattern" "$TMP/err.txt" || fail "missing pattern message: $(cat "$TMP/err.txt")"
"$BIN" info --arch retnet --heads 4 --retention-decay paper | grep -q "memory per head (tokens, 1/(1-gamma)): 32 " \
  || fail "retnet info lacks the paper decays"
if "$BIN" info --arch retnet --heads 2 --retention-decay 0.9,1.5 2> "$TMP/err.txt"; then fail "accepted decay 1.5"; fi
grep -q "outside (0, 1)" "$TMP/err.txt" || fail "decay message: $(cat "$TMP/err.txt")"

# Models and state files written by the build before the shared block stack still load and
# continue exactly as that build continued them (tests/data/preport/make.sh).
for arch in transformer mamba mamba2 retnet; do
  d="$SRC/tests/data/preport/$arch"
  "$BIN" generate --model "$d" --load-state "$d/state.st" --max-tokens 8 --temperature 0 \
    --context 64 --print-ids > "$TMP/old.txt" || fail "$arch: pre-port state did not load"
  cmp -s "$TMP/old.txt" "$d/continuation.txt" || fail "$arch: pre-port state continues differently"
done

# Bad input: clear errors, non-zero exit, no crash.
printf 'caf\xe9\n' > "$TMP/latin1.txt"
if "$BIN" eval --model "$TMP/run" --data "$TMP/latin1.txt" 2> "$TMP/err.txt"; then fail "accepted non-UTF-8"; fi
grep -q "not valid UTF-8" "$TMP/err.txt" || fail "non-UTF-8 message: $(cat "$TMP/err.txt")"
if "$BIN" generate --model "$TMP/missing" 2> "$TMP/err.txt"; then fail "accepted a missing model"; fi
grep -q "does not exist" "$TMP/err.txt" || fail "missing model message: $(cat "$TMP/err.txt")"
m="$(ck "$TMP/run")/model.safetensors"
head -c 100 "$m" > "$m.cut"
mv "$m.cut" "$m"
if "$BIN" info --model "$TMP/run" 2> "$TMP/err.txt"; then fail "accepted a truncated checkpoint"; fi
grep -q "model.safetensors" "$TMP/err.txt" || fail "truncated message: $(cat "$TMP/err.txt")"
# --out never destroys what we did not write; another run's directory needs --overwrite.
mkdir "$TMP/thesis" && echo keep > "$TMP/thesis/thesis.txt"
if "$BIN" train --data "$TMP/text.txt" --out "$TMP/thesis" "${small[@]}" --steps 1 2> "$TMP/err.txt"; then
  fail "trained into a directory of user files"
fi
grep -q "not a postformer run directory" "$TMP/err.txt" || fail "user-dir message: $(cat "$TMP/err.txt")"
[ "$(cat "$TMP/thesis/thesis.txt")" = keep ] && [ "$(ls "$TMP/thesis")" = thesis.txt ] || fail "user files changed"
if "$BIN" train --data "$TMP/text.txt" --out "$TMP/text.txt" "${small[@]}" --steps 1 2> /dev/null; then
  fail "trained over a file"
fi
[ -s "$TMP/text.txt" ] || fail "the data file was replaced"
if "$BIN" train --data "$TMP/text.txt" --out "$TMP/ft" "${small[@]}" --steps 1 2> "$TMP/err.txt"; then
  fail "a new run replaced another run's checkpoint without --overwrite"
fi
grep -q -- "--overwrite" "$TMP/err.txt" || fail "other-run message: $(cat "$TMP/err.txt")"
"$BIN" train --data "$TMP/text.txt" --out "$TMP/ft" "${small[@]}" --steps 1 --overwrite \
  --eval-every 1 --eval-batches 1 > /dev/null || fail "--overwrite"
[ "$(cat "$TMP/ft/latest")" = step-000000001 ] || fail "--overwrite did not replace the checkpoint"
for bad in "--steps -1" "--lr -1" "--beta1 1.5" "--dropout -0.5" "--log-every 0" "--threads 100000"; do
  # shellcheck disable=SC2086
  if "$BIN" train --data "$TMP/text.txt" --out "$TMP/bad" "${small[@]}" $bad 2> "$TMP/err.txt"; then
    fail "accepted $bad"
  fi
  grep -q -- "${bad%% *}" "$TMP/err.txt" || fail "$bad message: $(cat "$TMP/err.txt")"
done
[ ! -e "$TMP/bad" ] || fail "a refused run left $TMP/bad behind"
# A run with a tokenizer resumes and saves repeatedly (its files are read once, at the start).
"$BIN" train --resume "$TMP/mamba-ft" --data "$TMP/new.txt" --steps 5 --save-every 1 --eval-every 0 > /dev/null ||
  fail "resume with a tokenizer and --save-every"
[ -s "$(ck "$TMP/mamba-ft")/tokenizer.json" ] || fail "resumed run lost the tokenizer"
# --resume RUN/step-N: only the latest checkpoint; the run continues in RUN.
"$BIN" train --resume "$(ck "$TMP/mamba-ft")/" --data "$TMP/new.txt" --steps 6 --eval-every 0 > /dev/null ||
  fail "resume from the latest step directory"
[ "$(cat "$TMP/mamba-ft/latest")" = step-000000006 ] || fail "step-directory resume saved elsewhere"
# A symlink where a stale checkpoint would be is never followed when cleaning up.
mkdir "$TMP/precious" && echo keep > "$TMP/precious/config.json"
ln -s "$TMP/precious" "$TMP/mamba-ft/step-000000002"
"$BIN" train --resume "$TMP/mamba-ft" --data "$TMP/new.txt" --steps 7 --eval-every 0 > /dev/null || fail "resume beside a symlink"
[ "$(cat "$TMP/precious/config.json")" = keep ] || fail "cleanup followed a symlink"
echo "cli e2e: all checks passed"
