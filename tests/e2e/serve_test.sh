#!/usr/bin/env bash
# `postformer serve` as a user runs it: flag errors, a port file, curl requests, SIGTERM
# saving the sessions, a restart that finds them, and the chat page in headless Chromium.
# Usage: serve_test.sh PATH_TO_postformer SOURCE_DIR
set -euo pipefail
BIN="$1"
SRC="$2"
TMP=$(mktemp -d)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$TMP/serve.log" ] && cat "$TMP/serve.log" >&2; exit 1; }

for i in $(seq 1 200); do echo "In the beginning was the word, line $i."; done > "$TMP/text.txt"
"$BIN" train --data "$TMP/text.txt" --out "$TMP/run" --arch mamba --d-model 32 --layers 2 \
  --seq 32 --batch 4 --steps 2 --eval-every 2 --eval-batches 1 --val-fraction 0.1 --threads 2 > "$TMP/train.log"
MODEL="$TMP/run/$(cat "$TMP/run/latest")"

# Bad flags are named, and nothing starts.
expect_fail() {
  if "$BIN" serve "$@" > "$TMP/err.log" 2>&1; then fail "serve $* succeeded"; fi
}
expect_fail --model "$TMP/nothing"
grep -q "nothing" "$TMP/err.log" || fail "missing model not named"
expect_fail --model "$MODEL" --max-state-memory 5X
grep -q -- "--max-state-memory" "$TMP/err.log" || fail "bad size not named"
expect_fail --model "$MODEL" --port 70000
grep -q -- "--port" "$TMP/err.log" || fail "bad port not named"
echo "my notes" > "$TMP/notes.txt"
expect_fail --model "$MODEL" --port 0 --port-file "$TMP/notes.txt"
grep -q "my notes" "$TMP/notes.txt" || fail "a file that is not a port file was changed"

start() {
  rm -f "$TMP/port"
  "$BIN" serve --model "$MODEL" --port 0 --port-file "$TMP/port" --session-dir "$TMP/sessions" \
    --threads 2 > "$TMP/serve.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 300); do [ -s "$TMP/port" ] && break; sleep 0.1; done
  [ -s "$TMP/port" ] || fail "no port file"
  URL="http://127.0.0.1:$(cat "$TMP/port")"
}
stop() {
  kill -TERM "$PID"
  wait "$PID" || fail "serve exited with an error after SIGTERM"
  PID=""
}
start
curl -sf "$URL/health" | grep -q '"ok"' || fail "health"
curl -sf -X POST "$URL/v1/sessions" -d '{"id": "talk"}' | grep -q '"talk"' || fail "create session"
curl -sf "$URL/v1/completions" -d '{"prompt": "In the", "max_tokens": 8, "session": "talk", "seed": 1}' \
  | grep -q '"text_completion"' || fail "completion"
curl -sN "$URL/v1/chat/completions" \
  -d '{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8, "stream": true}' \
  > "$TMP/sse.txt"
grep -q '^data: \[DONE\]' "$TMP/sse.txt" || fail "stream did not end with [DONE]"
[ "$(grep -c '^data: {' "$TMP/sse.txt")" -ge 3 ] || fail "stream not sent token by token"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/completions" -d '{"prompt": ')
[ "$code" = 400 ] || fail "malformed JSON gave $code"
stop
grep -q "saving sessions" "$TMP/serve.log" || fail "no shutdown message"
[ -f "$TMP/sessions/talk.session.safetensors" ] || fail "session not saved at SIGTERM"

start
curl -sf "$URL/v1/sessions" | grep -q '"talk"' || fail "saved session not found after restart"
curl -sf "$URL/v1/completions" -d '{"prompt": " word", "max_tokens": 4, "session": "talk"}' \
  | grep -q '"session":"talk"' || fail "continuing the restored session"
if [ -f "$SRC/tests/e2e/chat_page_test.sh" ]; then
  stop
  bash "$SRC/tests/e2e/chat_page_test.sh" "$BIN" "$MODEL" || fail "chat page"
else
  stop
fi
echo "serve: ok"
