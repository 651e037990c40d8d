#!/usr/bin/env bash
# Starts recstream on the embedded default (./data, port 8080) and feeds it simulated traffic
# (`recstream simulate`) so recommendations, stats and the log have something to show.
# Ctrl-C stops both cleanly. RECSTREAM_BIN picks another binary (default ./build/recstream).
# Auth is on: the server creates an admin API key on its first start (DATA/privacy/admin.key),
# which this script hands to the simulator and prints in the try-it lines. RECSTREAM_API_KEY
# overrides it (e.g. when admin.key was deleted after first start).
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
    kill -0 $PID 2>/dev/null || { echo "run-demo: the server exited (see its log above)" >&2; exit 1; }
    sleep 0.1
done

KEY="${RECSTREAM_API_KEY:-}"
KEYCMD="\$(cat $DATA/privacy/admin.key)"
[ -n "$KEY" ] && KEYCMD='"\$RECSTREAM_API_KEY"'
if [ -z "$KEY" ]; then
    for _ in $(seq 1 50); do
        [ -s "$DATA/privacy/admin.key" ] && break
        sleep 0.1
    done
    if [ ! -s "$DATA/privacy/admin.key" ]; then
        echo "run-demo: no $DATA/privacy/admin.key (it is written on the first start only);" \
             "create a key with '$BIN keys create --data $DATA --role admin' and set" \
             "RECSTREAM_API_KEY" >&2
        exit 1
    fi
    KEY="$(cat "$DATA/privacy/admin.key")"
fi
export RECSTREAM_API_KEY="$KEY"

# Demo traffic: simulated users browsing a catalogue, asking for recommendations and
# clicking some, until this script exits (the trap stops the simulator with the server).
"$BIN" simulate --url "http://127.0.0.1:$PORT" --users 300 --items 1000 --rate 100 --quiet &
SIM=$!
sleep 3 # let the catalogue, profiles and a few recommendation loops exist

cat <<MSG

recstream is running on http://127.0.0.1:$PORT with simulated users (user-0001..user-0300)
and items (item-00001..item-01000) streaming in at 100 events/s; data in $DATA.
Every request needs an API key; this is the admin key created on first start
($DATA/privacy/admin.key; '$BIN keys --help' makes ingest/read keys). Try:
  KEY=$KEYCMD
  curl -s -H "Authorization: Bearer \$KEY" 'http://127.0.0.1:$PORT/v1/users/user-0001/recommendations?count=5'
  curl -s -H "Authorization: Bearer \$KEY" 'http://127.0.0.1:$PORT/v1/stats/ctr?window=1h'
  curl -s -H "Authorization: Bearer \$KEY" 'http://127.0.0.1:$PORT/v1/trending?window=1h&count=5'
  curl -s -H "Authorization: Bearer \$KEY" http://127.0.0.1:$PORT/v1/items/item-00001
  curl -s -H "Authorization: Bearer \$KEY" http://127.0.0.1:$PORT/v1/users/user-0001/profile
  curl -s http://127.0.0.1:$PORT/metrics
  curl -s -X POST http://127.0.0.1:$PORT/topics/user-interactions \\
       -H "Authorization: Bearer \$KEY" \\
       -H 'Content-Type: application/vnd.kafka.json.v2+json' \\
       -d '{"records":[{"value":{"userId":"123","eventType":"click","itemId":"product456"}}]}'
  $BIN log tail --data $DATA --lines 3
Ctrl-C stops the server and the simulator.
MSG
wait $PID
