#!/usr/bin/env bash
# Starts recstream on the embedded default (./data, port 8080) and feeds it simulated traffic
# (`recstream simulate`) so recommendations, stats and the log have something to show.
# Ctrl-C stops both cleanly. RECSTREAM_BIN picks another binary (default ./build/recstream).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${RECSTREAM_BIN:-./build/recstream}"
PORT="${RECSTREAM_PORT:-8080}"
DATA="${RECSTREAM_DATA:-./data}"

"$BIN" serve --data "$DATA" --listen "0.0.0.0:$PORT" --fsync batch:5 &
PID=$!
SIM=
trap 'kill -TERM $SIM $PID 2>/dev/null; wait $SIM $PID' INT TERM EXIT

for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done

# Demo traffic: simulated users browsing a catalogue, asking for recommendations and
# clicking some, until this script exits (the trap stops the simulator with the server).
"$BIN" simulate --url "http://127.0.0.1:$PORT" --users 300 --items 1000 --rate 100 --quiet &
SIM=$!
sleep 3 # let the catalogue, profiles and a few recommendation loops exist

cat <<MSG

recstream is running on http://127.0.0.1:$PORT with simulated users (user-0001..user-0300)
and items (item-00001..item-01000) streaming in at 100 events/s; data in $DATA.
Try:
  curl -s 'http://127.0.0.1:$PORT/v1/users/user-0001/recommendations?count=5'
  curl -s 'http://127.0.0.1:$PORT/v1/stats/ctr?window=1h'
  curl -s 'http://127.0.0.1:$PORT/v1/trending?window=1h&count=5'
  curl -s http://127.0.0.1:$PORT/v1/items/item-00001
  curl -s http://127.0.0.1:$PORT/v1/users/user-0001/profile
  curl -s http://127.0.0.1:$PORT/metrics
  curl -s -X POST http://127.0.0.1:$PORT/topics/user-interactions \\
       -H 'Content-Type: application/vnd.kafka.json.v2+json' \\
       -d '{"records":[{"value":{"userId":"123","eventType":"click","itemId":"product456"}}]}'
  $BIN log tail --data $DATA --lines 3
Ctrl-C stops the server and the simulator.
MSG
wait $PID
