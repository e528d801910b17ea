#!/usr/bin/env bash
# Renders a compare report's report.html in headless Chromium and checks that the browser
# decoded every embedded plot (the page records loaded/total in <body data-plots-loaded>).
# Usage: report_html_test.sh REPORT_DIR
set -euo pipefail
DIR="$1"
fail() { echo "FAIL: $*" >&2; exit 1; }
BROWSER=$(command -v chromium || command -v chromium-browser || true)
[ -n "$BROWSER" ] || fail "chromium is not installed (apt-get install chromium)"
[ -s "$DIR/report.html" ] || fail "$DIR/report.html is missing"
pngs=$(find "$DIR" -maxdepth 1 -name '*.png' | wc -l)
[ "$pngs" -ge 4 ] || fail "expected at least 4 plots in $DIR, found $pngs"
PROFILE=$(mktemp -d)
trap 'rm -rf "$PROFILE"' EXIT
# --no-sandbox: CI runs as root; the profile dir keeps the run from touching ~/.config.
dom=$(timeout 60 "$BROWSER" --headless --no-sandbox --disable-gpu --user-data-dir="$PROFILE" \
  --virtual-time-budget=10000 --dump-dom "file://$(realpath "$DIR/report.html")" 2>/dev/null) \
  || fail "chromium failed to render $DIR/report.html"
loaded=$(printf '%s' "$dom" | grep -o 'data-plots-loaded="[0-9]*/[0-9]*"' | head -1 | cut -d'"' -f2)
[ -n "$loaded" ] || fail "the page never reported its plots (script did not run?)"
[ "$loaded" = "$pngs/$pngs" ] || fail "plots loaded: $loaded, expected $pngs/$pngs"
echo "report_html_test: $loaded plots rendered"
