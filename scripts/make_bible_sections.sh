#!/usr/bin/env bash
# Builds a text-classification set from the KJV Bible (Debian bible-kjv): each example is one
# verse, labelled with its section of the Bible:
#   law (Genesis..Deuteronomy), history (Joshua..Esther), poetry (Job..Song of Solomon),
#   prophets (Isaiah..Malachi), gospels (Matthew..Acts), letters (Romans..Revelation).
# Usage: bash scripts/make_bible_sections.sh [OUT_DIR]     (default: data/bible-sections)
#
# Layout:  OUT_DIR/{train,test}/<section>/<book>_<chapter>_<verse>.txt
#          OUT_DIR/.complete   the version string below; written last
# Every fifth chapter of each book (chapters 5, 10, ...) is held out whole for the test split,
# so no test verse has its neighbours in training. Deterministic.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="bible-sections v1"
OUT_DIR="${1:-data/bible-sections}"
OUT_DIR="${OUT_DIR%/}"

command -v bible >/dev/null || {
  echo "bible sections: 'bible' not found; run 'bash scripts/setup.sh' (or: apt-get install bible-kjv)" >&2
  exit 1
}
source scripts/data_dir.sh
if ! data_dir_needs_build "bible sections" "$OUT_DIR" "$VERSION"; then
  echo "bible sections: up to date"
  exit 0
fi

TMP="$OUT_DIR.tmp.$$"
mkdir -p "$(dirname "$OUT_DIR")"
mkdir "$TMP"  # fails if it somehow exists: then it is not ours to remove
trap 'rm -rf -- "$TMP"' EXIT
trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM

# bible prints "Ge1:1 In the beginning ..."; the book abbreviations in its order.
bible -f "Gen1:1-Rev22:21" | LC_ALL=C awk -v out="$TMP" '
  BEGIN {
    n = split("Ge Exo Lev Num Deu", a, " ");   for (i = 1; i <= n; ++i) sec[a[i]] = "law"
    n = split("Josh Jdgs Ruth 1Sm 2Sm 1Ki 2Ki 1Chr 2Chr Ezra Neh Est", a, " ")
    for (i = 1; i <= n; ++i) sec[a[i]] = "history"
    n = split("Job Psa Prv Eccl SSol", a, " "); for (i = 1; i <= n; ++i) sec[a[i]] = "poetry"
    n = split("Isa Jer Lam Eze Dan Hos Joel Amos Obad Jonah Mic Nahum Hab Zep Hag Zec Mal", a, " ")
    for (i = 1; i <= n; ++i) sec[a[i]] = "prophets"
    n = split("Mat Mark Luke John Acts", a, " "); for (i = 1; i <= n; ++i) sec[a[i]] = "gospels"
    n = split("Rom 1Cor 2Cor Gal Eph Phi Col 1Th 2Th 1Tim 2Tim Titus Phmn Heb Jas 1Pet 2Pet 1Jn 2Jn 3Jn Jude Rev", a, " ")
    for (i = 1; i <= n; ++i) sec[a[i]] = "letters"
    for (s in sec) made[sec[s]] = 0
  }
  {
    ref = $1
    if (!match(ref, /[0-9]+:[0-9]+$/)) { print "bible sections: bad reference " ref > "/dev/stderr"; exit 1 }
    book = substr(ref, 1, RSTART - 1); split(substr(ref, RSTART), cv, ":")
    if (!(book in sec)) { print "bible sections: unknown book " book > "/dev/stderr"; exit 1 }
    text = substr($0, length(ref) + 2)
    split_name = (cv[1] % 5 == 0) ? "test" : "train"
    dir = out "/" split_name "/" sec[book]
    if (!(dir in dirs)) { dirs[dir] = 1; system("mkdir -p \"" dir "\"") }
    file = sprintf("%s/%s_%03d_%03d.txt", dir, book, cv[1], cv[2])
    printf "%s", text > file
    close(file)
    count[split_name]++
  }
  END { printf "bible sections: %d train verses, %d test verses (every 5th chapter held out)\n", count["train"], count["test"] }
'
echo "$VERSION" > "$TMP/.complete"
if [ -e "$OUT_DIR" ]; then rm -rf -- "$OUT_DIR"; fi  # only reached when its marker says it is ours
mv "$TMP" "$OUT_DIR"
trap - EXIT
