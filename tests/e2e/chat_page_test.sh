#!/usr/bin/env bash
# Starts `postformer serve`, opens its chat page in headless Chromium with ?autosend=1, and checks
# that the page streamed a reply: the reply element records data-chunks="N" (content chunks
# received) and data-done="1" once the stream has ended.
# Usage: chat_page_test.sh POSTFORMER_BIN MODEL_DIR
set -euo pipefail
BIN="$1"
MODEL="$2"
fail() { echo "FAIL: $*" >&2; exit 1; }
BROWSER=$(command -v chromium || command -v chromium-browser || true)
[ -n "$BROWSER" ] || fail "chromium is not installed (apt-get install chromium)"
[ -x "$BIN" ] || fail "$BIN is not an executable"
[ -d "$MODEL" ] || fail "model directory $MODEL is missing"

TMP=$(mktemp -d)
SERVER=
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
server_log() { echo "--- server log:" >&2; tail -n 20 "$TMP/server.log" >&2 || true; }

"$BIN" serve --model "$MODEL" --port 0 --port-file "$TMP/port" >"$TMP/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 300); do
  [ -s "$TMP/port" ] && break
  kill -0 "$SERVER" 2>/dev/null || { server_log; fail "the server exited before listening"; }
  sleep 0.1
done
[ -s "$TMP/port" ] || { server_log; fail "the server wrote no port file within 30 s"; }
PORT=$(tr -d '[:space:]' <"$TMP/port")
[[ "$PORT" =~ ^[0-9]+$ ]] || fail "port file holds '$PORT', not a port number"

# Virtual time stands still while a fetch is in flight, so the budget runs out only once the
# stream has ended (or after 20 s of page timers); `timeout` guards against a hung browser.
# --no-sandbox: CI runs as root; the profile dir keeps the run from touching ~/.config.
URL="http://127.0.0.1:$PORT/?prompt=Hello&autosend=1&max_tokens=24"
dom=$(timeout 60 "$BROWSER" --headless --no-sandbox --disable-gpu --user-data-dir="$TMP/profile" \
  --virtual-time-budget=20000 --dump-dom "$URL" 2>"$TMP/chromium.log") \
  || { tail -n 5 "$TMP/chromium.log" >&2; server_log; fail "chromium failed to load $URL"; }

# The reply's opening tag and text, with the DOM on one line (the text may span lines).
reply=$(printf '%s' "$dom" | tr '\n' ' ' | grep -o '<div class="msg assistant"[^>]*>[^<]*' | tail -1 || true)
[ -n "$reply" ] || { server_log; fail "the page shows no assistant reply (script did not run?)"; }
tag=${reply%%>*}
text=${reply#*>}
meta=$(printf '%s' "$dom" | tr '\n' ' ' | grep -o '<div class="meta[^"]*">[^<]*' | tail -1 | sed 's/.*>//' || true)
chunks=$(printf '%s' "$tag" | grep -o 'data-chunks="[0-9]*"' | cut -d'"' -f2 || true)
printf '%s' "$tag" | grep -q 'data-done="1"' \
  || { server_log; fail "the stream did not finish in the page (chunks so far: ${chunks:-none})"; }
finish=$(printf '%s' "$tag" | grep -o 'data-finish="[a-z]*"' | cut -d'"' -f2 || true)
[ "$finish" != "error" ] || { server_log; fail "the page reported an error: $meta"; }
[ "${chunks:-0}" -ge 2 ] || fail "expected at least 2 streamed chunks, got ${chunks:-0} ($meta)"
[ -n "${text//[[:space:]]/}" ] || fail "the reply text is empty ($meta)"
echo "chat_page_test: $chunks chunks, finish=$finish, reply: ${text:0:60}"
