#!/usr/bin/env bash
# http(s) imports and schema URLs are fetched at build time (real HTTP, from a local Node
# server), and `--resource-map` serves the same URLs from disk when offline.
source "$(dirname "$0")/lib.sh"
mkdir -p "$WORK/site/schemas"
cat > "$WORK/site/shared.flow.yaml" <<'YAML'
collections:
  - name: remote/things
    schema: schemas/thing.schema.yaml#/$defs/thing
    key: [/id]
YAML
cat > "$WORK/site/schemas/thing.schema.yaml" <<'YAML'
$defs:
  thing: {type: object, properties: {id: {type: string}}, required: [id]}
YAML
node -e '
  const http = require("http"), fs = require("fs"), path = require("path");
  const root = process.argv[1];
  const server = http.createServer((req, res) => {
    const file = path.join(root, decodeURIComponent(req.url));
    fs.readFile(file, (err, data) => {
      if (err) { res.writeHead(404); res.end("not found"); return; }
      res.writeHead(200, {"Content-Type": "application/yaml"}); res.end(data);
    });
  });
  server.listen(0, "127.0.0.1", () => {
    fs.writeFileSync(path.join(root, "..", "port"), String(server.address().port));
  });
' "$WORK/site" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do [[ -s "$WORK/port" ]] && break; sleep 0.1; done
port=$(cat "$WORK/port")
cat > "$WORK/flow.yaml" <<YAML
import:
  - http://127.0.0.1:$port/shared.flow.yaml
collections:
  - name: local/refs
    schema: http://127.0.0.1:$port/schemas/thing.schema.yaml#/\$defs/thing
    key: [/id]
YAML
expect_status 0 "$FLOWCTL" build --source "$WORK/flow.yaml" --catalog "$WORK/c.db"
expect_eq "remote resources stored" \
  "$(sqlite3 "$WORK/c.db" "SELECT count(*) FROM resources WHERE url LIKE 'http://127.0.0.1:%'")" 2

# A 404 names the URL and the importing file and line.
printf 'import:\n  - http://127.0.0.1:%s/missing.yaml\n' "$port" > "$WORK/missing.yaml"
expect_status 1 "$FLOWCTL" build --source "$WORK/missing.yaml" --catalog "$WORK/c.db"
expect_err "missing.yaml:2:5: error: cannot read import \`http://127.0.0.1:$port/missing.yaml\`"
expect_err "HTTP status 404"

# Offline: the same catalog builds from disk through --resource-map.
kill $server
expect_status 0 "$FLOWCTL" build --source "$WORK/flow.yaml" --catalog "$WORK/c2.db" \
  --resource-map "http://127.0.0.1:$port/=$WORK/site/"
finish
