#!/usr/bin/env bash
# The main job: set up, build, then `compare` every architecture (Transformer, Mamba,
# Mamba-2, RetNet, a Jamba-style hybrid) at matched parameters on the KJV Bible with about
# ten minutes of training in all, print the table and the report's path. Run it again and
# it resumes (or, when finished, reprints) the same report; delete runs/compare for a new one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
./build/postformer compare --data data/kjv.txt --out runs/compare --minutes 10 "$@"
