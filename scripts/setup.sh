#!/usr/bin/env bash
# Installs the build dependencies and the default corpus. Idempotent; run as root
# (or with sudo available). Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(build-essential cmake ninja-build libdnnl-dev nlohmann-json3-dev libcli11-dev
          libgtest-dev libbenchmark-dev libsentencepiece-dev bible-kjv
          clang libclang-rt-14-dev libomp-dev  # clang: the sanitizer and libFuzzer build
          zlib1g-dev libpng-dev  # gzip data sets, PNG images (classify)
          dataset-fashion-mnist espeak-ng sox  # classify data: images, synthesised spoken digits
          gnuplot-nox chromium  # plots of `compare` and `plot`; chromium renders report.html and the chat page in tests
          libcpp-httplib-dev curl)  # `serve`: the HTTP server; curl drives it in the end-to-end test

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root to install: ${missing[*]}" >&2; exit 1; }
    SUDO=sudo
  fi
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Default corpus: the King James Bible, one verse per line, without verse references.
mkdir -p data
if [ ! -s data/kjv.txt ]; then
  echo "setup: extracting data/kjv.txt"
  bible -f "Gen1:1-Rev22:21" | sed 's/^[^ ]* //' > data/kjv.txt.tmp
  mv data/kjv.txt.tmp data/kjv.txt
fi
echo "setup: ok ($(wc -c < data/kjv.txt) bytes in data/kjv.txt)"
