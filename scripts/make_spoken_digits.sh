#!/usr/bin/env bash
# Synthesises a small spoken-digit data set ("zero".."nine", labels 0..9) with espeak-ng and sox.
# Usage: bash scripts/make_spoken_digits.sh [OUT_DIR]     (default: data/spoken-digits)
#
# Layout:  OUT_DIR/{train,test}/<digit>/<voice>_s<speed>_p<pitch>.wav   (16 kHz mono s16, 16000 samples)
#          OUT_DIR/manifest.tsv   split label path voice speed pitch   (path relative to OUT_DIR)
#          OUT_DIR/voices.txt     the train and the held-out test voices
#          OUT_DIR/.complete      the version string below; written last
# Whole voices are held out for the test split, so the test set measures generalisation to unseen
# speakers rather than to unseen renditions of seen ones. Deterministic: espeak-ng is, and sox runs
# without dither (-D) and in repeatable mode (-R), so two runs give byte-identical files.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="spoken-digits v1"
OUT_DIR="${1:-data/spoken-digits}"
OUT_DIR="${OUT_DIR%/}"

for tool in espeak-ng sox soxi; do
  command -v "$tool" >/dev/null || {
    echo "spoken digits: '$tool' not found; run 'bash scripts/setup.sh' (or: apt-get install espeak-ng sox)" >&2
    exit 1
  }
done

source scripts/data_dir.sh
if ! data_dir_needs_build "spoken digits" "$OUT_DIR" "$VERSION"; then
  echo "spoken digits: up to date ($(($(wc -l < "$OUT_DIR/manifest.tsv") - 1)) clips)"
  exit 0
fi

WORDS=(zero one two three four five six seven eight nine)
SPEEDS=(130 155 180 210)  # words per minute; at 130 the longest word still fits 1 s once silence is trimmed
PITCHES=(30 50 70)    # espeak -p, 0..99, relative to the variant's own pitch range

# A voice = espeak-ng accent + variant (the timbre: male, female, klatt, ...). Only the built-in
# espeak voices (no mbrola voices are installed). Each variant is used once: 16 female, 20 male,
# 8 accents with 4-5 voices each, at least 2 female and 2 male per accent.
# The test voices (one per accent, 4 female and 4 male, 8 of 36 = 22%) use variants that appear
# in no train voice, so a test speaker is new in timbre, not only in accent/timbre pairing.
TRAIN_VOICES=(
  en-gb+m1            en-gb+f1            en-gb+klatt         en-gb+Annie
  en-us+m2            en-us+f2            en-us+klatt2        en-us+belinda
  en-us-nyc+m3        en-us-nyc+f3        en-us-nyc+adam      en-us-nyc+steph
  en-gb-scotland+m4   en-gb-scotland+f4   en-gb-scotland+john   en-gb-scotland+grandma
  en-gb-x-rp+m5       en-gb-x-rp+f5       en-gb-x-rp+paul
  en-gb-x-gbclan+m6   en-gb-x-gbclan+Andrea en-gb-x-gbclan+robert
  en-gb-x-gbcwmd+m7   en-gb-x-gbcwmd+linda  en-gb-x-gbcwmd+quincy
  en-029+m8           en-029+anika        en-029+travis
)
TEST_VOICES=(
  en-gb+Alex          en-us+Alicia        en-us-nyc+victor    en-gb-scotland+steph2
  en-gb-x-rp+aunty    en-gb-x-gbclan+max  en-gb-x-gbcwmd+steph3  en-029+klatt4
)

# espeak-ng silently falls back to the plain voice for an unknown variant or accent, so check
# every name against its own listings rather than trust the exit status.
known_variants=$(espeak-ng --voices=variant | awk 'NR > 1 { print $NF }' | sed -n 's|^!v/||p')
known_accents=$(espeak-ng --voices=en | awk 'NR > 1 { print $2 }')
for v in "${TRAIN_VOICES[@]}" "${TEST_VOICES[@]}"; do
  grep -qxF "${v%%+*}" <<< "$known_accents" || { echo "spoken digits: espeak-ng has no accent '${v%%+*}'" >&2; exit 1; }
  grep -qxF "${v#*+}" <<< "$known_variants" || { echo "spoken digits: espeak-ng has no variant '${v#*+}'" >&2; exit 1; }
done
dups=$(printf '%s\n' "${TRAIN_VOICES[@]}" "${TEST_VOICES[@]}" | sort | uniq -d)
[ -z "$dups" ] || { echo "spoken digits: voice in both splits or twice: $dups" >&2; exit 1; }

# Renders a batch of clips, one per argument. Job format: relpath:voice:word:speed:pitch (no field contains ':').
# Runs in the xargs workers; temp files are per worker process, inside our tmp dir.
render_clips() {
  local tmp=$1; shift
  local raw="$tmp/.work/$$.raw.wav" cut="$tmp/.work/$$.cut.wav"
  local job rel voice word speed pitch n lead
  set -euo pipefail  # bash -c does not inherit the parent's options
  for job in "$@"; do
    IFS=: read -r rel voice word speed pitch <<< "$job"
    espeak-ng -v "$voice" -s "$speed" -p "$pitch" -w "$raw" "$word"
    # Trim silence at both ends (the threshold is low: espeak pauses are near digital silence, and a
    # higher one would clip soft onsets such as the f of "five"), and convert to 16 kHz mono s16.
    # espeak peaks near full scale and resampling overshoots, so 3 dB of fixed headroom avoids
    # clipping while keeping the voices' relative loudness (no per-clip normalisation).
    sox -D -R "$raw" -r 16000 -c 1 -b 16 "$cut" \
      silence 1 0.005 0.1% reverse silence 1 0.005 0.1% reverse gain -3
    n=$(soxi -s "$cut")
    # Never cut a word to fit: fail instead (raise the slowest of SPEEDS if this fires).
    # And never accept a clip with (almost) nothing left after trimming: 0.1 s is far below a word.
    if [ "$n" -gt 16000 ] || [ "$n" -lt 1600 ]; then
      echo "spoken digits: $voice '$word' s$speed p$pitch is $n samples after trimming (want 1600..16000)" >&2
      return 1
    fi
    # Centre the word in exactly 1 s.
    lead=$(( (16000 - n) / 2 ))
    sox -D -R "$cut" "$tmp/$rel" pad "${lead}s" "$((16000 - n - lead))s"
  done
}
export -f render_clips

start=$(date +%s)
TMP="$OUT_DIR.tmp.$$"
mkdir -p "$(dirname "$OUT_DIR")"
mkdir "$TMP"                      # fails if it somehow exists: then it is not ours to remove
# On any exit before the final rename (error, Ctrl-C, kill): stop our workers first, so none
# writes on into a removed directory, then remove only our own tmp dir.
workers=""
cleanup() {
  if [ -n "$workers" ]; then kill -TERM -- "-$workers" 2>/dev/null || true; wait 2>/dev/null || true; fi
  rm -rf -- "$TMP"
}
trap cleanup EXIT
trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM
mkdir "$TMP/.work"

# One job per clip, in a fixed order; the manifest is written here from the same list, so its
# order does not depend on how the parallel workers interleave.
jobs="$TMP/.work/jobs"
printf 'split\tlabel\tpath\tvoice\tspeed\tpitch\n' > "$TMP/manifest.tsv"
: > "$jobs"
for split in train test; do
  if [ "$split" = train ]; then voices=("${TRAIN_VOICES[@]}"); else voices=("${TEST_VOICES[@]}"); fi
  for label in "${!WORDS[@]}"; do
    mkdir -p "$TMP/$split/$label"
    for voice in "${voices[@]}"; do
      for speed in "${SPEEDS[@]}"; do
        for pitch in "${PITCHES[@]}"; do
          rel="$split/$label/${voice//+/_}_s${speed}_p${pitch}.wav"
          printf '%s:%s:%s:%s:%s\n' "$rel" "$voice" "${WORDS[$label]}" "$speed" "$pitch" >> "$jobs"
          printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$split" "$label" "$rel" "$voice" "$speed" "$pitch" >> "$TMP/manifest.tsv"
        done
      done
    done
  done
done
per_voice=$(( ${#WORDS[@]} * ${#SPEEDS[@]} * ${#PITCHES[@]} ))
n_train=$(( ${#TRAIN_VOICES[@]} * per_voice ))
n_test=$(( ${#TEST_VOICES[@]} * per_voice ))
echo "spoken digits: rendering $((n_train + n_test)) clips ($n_train train from ${#TRAIN_VOICES[@]} voices," \
     "$n_test test from ${#TEST_VOICES[@]} held-out voices; ${#SPEEDS[@]} speeds x ${#PITCHES[@]} pitches) on $(nproc) cores"

# Batches of 25 clips per worker shell keep the bash start-up cost small. xargs runs in the
# background in a process group of its own (set -m), so cleanup can stop it with all its workers.
set -m
xargs -d '\n' -n 25 -P "$(nproc)" bash -c 'render_clips "$0" "$@"' "$TMP" < "$jobs" &
workers=$!
set +m
wait "$workers"   # non-zero if any clip failed: set -e then exits through cleanup
workers=""

rendered=$(find "$TMP/train" "$TMP/test" -name '*.wav' | wc -l)
[ "$rendered" -eq $((n_train + n_test)) ] || { echo "spoken digits: rendered $rendered clips, expected $((n_train + n_test))" >&2; exit 1; }

{
  echo "# train (${#TRAIN_VOICES[@]} voices)"; printf '%s\n' "${TRAIN_VOICES[@]}"
  echo "# test (${#TEST_VOICES[@]} held-out voices)"; printf '%s\n' "${TEST_VOICES[@]}"
} > "$TMP/voices.txt"
rm -rf -- "$TMP/.work"
echo "$VERSION" > "$TMP/.complete"

# Replace an older version's output only now, when the new one is complete: move it aside, move
# the new one in, then delete the old one. It carries our marker (checked above), so it is ours.
old=""
if [ -f "$OUT_DIR/.complete" ]; then old="$OUT_DIR.old.$$"; mv -T "$OUT_DIR" "$old"; fi
mv -T "$TMP" "$OUT_DIR"
trap - EXIT
[ -z "$old" ] || rm -rf -- "$old"
echo "spoken digits: $n_train train clips (${#TRAIN_VOICES[@]} voices), $n_test test clips" \
     "(${#TEST_VOICES[@]} held-out voices) in $OUT_DIR, $(( $(date +%s) - start )) s"
