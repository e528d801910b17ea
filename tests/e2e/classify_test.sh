#!/usr/bin/env bash
# End-to-end: `classify train | eval | predict` on a Fashion-MNIST subset (Perceiver IO and a
# sequence backbone), resume, the confusion-matrix PNG, and clean errors for bad inputs.
# Usage: classify_test.sh PATH_TO_postformer SOURCE_DIR
set -euo pipefail
BIN="$1"
SRC="$2"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

small=(--limit 600 --d-model 32 --layers 1 --latents 8 --batch 16 --threads 2 --eval-every 10
       --log-every 5)
"$BIN" classify train "${small[@]}" --steps 10 --out "$TMP/p" > "$TMP/train.log" || fail "perceiver train"
grep -q "step    10/10 .*val acc .*%.*ex/s" "$TMP/train.log" || fail "no progress line: $(cat "$TMP/train.log")"
grep -q "validation accuracy" "$TMP/train.log" || fail "no final accuracy"
# Resume continues the same run to a larger total.
"$BIN" classify train --resume "$TMP/p" --steps 15 --threads 2 > "$TMP/resume.log" || fail "resume"
grep -q "resumed from .* at step 10" "$TMP/resume.log" || fail "resume did not start at step 10"
[ "$(cat "$TMP/p/latest")" = step-000000015 ] || fail "resume saved $(cat "$TMP/p/latest")"
# eval prints accuracy and the matrix, writes the PNG and JSON; an existing PNG is kept.
"$BIN" classify eval --model "$TMP/p" --limit 200 --confusion "$TMP/cm.png" --json "$TMP/e.json" \
  > "$TMP/eval.log" || fail "eval"
grep -q "test: accuracy" "$TMP/eval.log" || fail "eval output: $(cat "$TMP/eval.log")"
grep -q "Ankle boot" "$TMP/eval.log" || fail "no class names in the matrix"
head -c 4 "$TMP/cm.png" | od -c | grep -q "P   N   G" || fail "confusion.png is not a PNG"
grep -q '"accuracy"' "$TMP/e.json" || fail "no accuracy in the JSON"
if "$BIN" classify eval --model "$TMP/p" --limit 10 --confusion "$TMP/cm.png" 2> "$TMP/err"; then
  fail "eval replaced an existing PNG without --overwrite"
fi
grep -q "exists" "$TMP/err" || fail "overwrite message: $(cat "$TMP/err")"
# predict: top classes of a PNG; a wrong-size PNG and a non-PNG are named.
"$BIN" classify predict --model "$TMP/p" "$SRC/tests/e2e/data/fashion_test0.png" --top 2 \
  > "$TMP/pred.log" || fail "predict"
grep -Eq "fashion_test0.png: .+ [0-9.]+%, .+ [0-9.]+%" "$TMP/pred.log" || fail "predict output: $(cat "$TMP/pred.log")"
if "$BIN" classify predict --model "$TMP/p" "$SRC/tests/fuzz/corpus/png/gray4x3.png" 2> "$TMP/err"; then
  fail "accepted a 4x3 image"
fi
grep -q "gray4x3.png: image is 4x3 pixels, the model reads 28x28" "$TMP/err" || fail "size message: $(cat "$TMP/err")"
echo "not a png" > "$TMP/x.png"
if "$BIN" classify predict --model "$TMP/p" "$TMP/x.png" 2> "$TMP/err"; then fail "accepted a non-PNG"; fi
grep -q "x.png: not a PNG" "$TMP/err" || fail "non-PNG message: $(cat "$TMP/err")"
# A sequence backbone trains with the same command.
"$BIN" classify train "${small[@]}" --backbone mamba --steps 5 --out "$TMP/m" > "$TMP/m.log" || fail "mamba backbone"
grep -q "model mamba" "$TMP/m.log" || fail "mamba backbone log: $(cat "$TMP/m.log")"
# Audio from a WAV folder (tones against noise, made with sox): the audio defaults apply to
# the flags not given (batch 32, ...), a flag given wins, and predict reads a WAV.
for split in train test; do
  for c in tone noise; do
    mkdir -p "$TMP/wav/$split/$c"
    for i in $(seq 20); do
      if [ $c = tone ]; then gen="sine $((200 + 50 * i))"; else gen="whitenoise"; fi
      sox -n -r 16000 -c 1 -b 16 "$TMP/wav/$split/$c/$i.wav" synth 0.5 $gen vol 0.3
    done
  done
done
"$BIN" classify train --data "$TMP/wav" --val-every 10 --threads 2 --out "$TMP/a" > "$TMP/a.log" \
  || fail "audio train: $(cat "$TMP/a.log")"
grep -q " steps of 32 " "$TMP/a.log" || fail "audio defaults: $(grep model "$TMP/a.log")"
"$BIN" classify train --data "$TMP/wav" --val-every 10 --threads 2 --batch 2 --steps 3 --out "$TMP/a2" \
  > "$TMP/a2.log" || fail "audio train with --batch"
grep -q "3 steps of 2 " "$TMP/a2.log" || fail "--batch lost to the audio default: $(grep model "$TMP/a2.log")"
"$BIN" classify predict --model "$TMP/a" "$TMP/wav/test/tone/1.wav" --top 2 > "$TMP/apred.log" \
  || fail "audio predict"
grep -Eq "1.wav: (tone|noise) [0-9.]+%, (tone|noise) [0-9.]+%" "$TMP/apred.log" || fail "audio predict: $(cat "$TMP/apred.log")"
# Bad flags and data are refused before anything is written.
for bad in "--backbone lstm" "--patch 5" "--data $TMP/nowhere"; do
  if "$BIN" classify train "${small[@]}" --steps 2 --out "$TMP/bad" $bad 2> "$TMP/err"; then
    fail "accepted $bad"
  fi
  [ -s "$TMP/err" ] || fail "$bad: no message"
done
[ ! -e "$TMP/bad" ] || fail "a refused run left $TMP/bad behind"
# A truncated IDX file is named.
mkdir "$TMP/idx"
head -c 1000 /usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz > "$TMP/idx/train-labels-idx1-ubyte.gz"
cp /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz "$TMP/idx/"
if "$BIN" classify train --data "$TMP/idx" --steps 1 --out "$TMP/bad" 2> "$TMP/err"; then fail "accepted a truncated IDX"; fi
grep -q "train-labels-idx1-ubyte.gz: gzip data is truncated" "$TMP/err" || fail "truncated IDX message: $(cat "$TMP/err")"
echo "classify e2e: all checks passed"
