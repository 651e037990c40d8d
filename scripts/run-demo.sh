#!/usr/bin/env bash
# Starts recstream on the embedded default (./data, port 8080) and feeds it a little demo
# traffic so the log has something to show. Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=./build/recstream
PORT="${RECSTREAM_PORT:-8080}"
DATA="${RECSTREAM_DATA:-./data}"

"$BIN" serve --data "$DATA" --listen "0.0.0.0:$PORT" --fsync batch:5 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID' INT TERM EXIT

for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done

# Demo traffic: a few users browsing a small catalogue, through each ingestion route.
now() { date +%s%3N; }
for u in 1 2 3 4 5; do
    for i in 1 2 3 4; do
        item="product$(( (u * 7 + i * 3) % 12 ))"
        curl -fsS -X POST "http://127.0.0.1:$PORT/topics/user-interactions" \
            -H 'Content-Type: application/vnd.kafka.json.v2+json' \
            -d "{\"records\":[{\"value\":{\"userId\":\"user$u\",\"eventType\":\"view\",\"itemId\":\"$item\",\"timestamp\":$(now)}}]}" >/dev/null
    done
    curl -fsS -X POST "http://127.0.0.1:$PORT/v1/events" -H 'Content-Type: application/json' \
        -d "[{\"userId\":\"user$u\",\"eventType\":\"add_to_cart\",\"itemId\":\"product$u\"}]" >/dev/null
done

cat <<MSG

recstream is running on http://127.0.0.1:$PORT with demo events in $DATA.
Try:
  curl -s -X POST http://127.0.0.1:$PORT/topics/user-interactions \\
       -H 'Content-Type: application/vnd.kafka.json.v2+json' \\
       -d '{"records":[{"value":{"userId":"123","eventType":"click","itemId":"product456"}}]}'
  curl -s http://127.0.0.1:$PORT/v1/users/user1/profile
  curl -s 'http://127.0.0.1:$PORT/v1/items/product1/similar?count=5'
  curl -s 'http://127.0.0.1:$PORT/v1/trending?window=1h&count=5'
  $BIN log tail --data $DATA --lines 3
  curl -s http://127.0.0.1:$PORT/metrics
Ctrl-C stops the server.
MSG
wait $PID
