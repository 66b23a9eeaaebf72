#!/usr/bin/env bash
# Streams a file to a running `flowctl develop` over its WebSocket ingestion API, with a
# real WebSocket client (the `ws` npm package, installed into .deps/npm when missing).
#   scripts/ws-send.sh URL PROTOCOL FILE [LINES_PER_MESSAGE]
#   e.g. scripts/ws-send.sh ws://127.0.0.1:8081/ingest/bikeshare/rides csv/v1 rides.csv 100
# Prints the server's replies ({"Offsets": ..., "Processed": n}); exits 1 when the server
# closes the stream (an invalid row: nothing of that transaction is written).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
if [[ $# -lt 3 ]]; then
  echo "usage: scripts/ws-send.sh URL PROTOCOL FILE [LINES_PER_MESSAGE]" >&2
  exit 2
fi
"$repo/scripts/npm-deps.sh" test
export NODE_PATH="$repo/.deps/npm/node_modules"
exec node "$repo/tests/e2e/develop_ws.js" "$1" "$2" --per "${4:-1}" "$3"
