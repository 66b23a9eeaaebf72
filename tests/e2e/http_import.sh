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
    if (req.url.startsWith("/huge.yaml")) {  // 65 MiB, with or without a Content-Length
      const chunk = Buffer.alloc(1 << 20, "#"), n = 65;
      const headers = {"Content-Type": "application/yaml"};
      if (req.url.endsWith("?sized")) headers["Content-Length"] = String(n * chunk.length);
      res.writeHead(200, headers);
      let sent = 0;
      const more = () => {
        while (sent < n) { sent++; if (!res.write(chunk)) { res.once("drain", more); return; } }
        res.end();
      };
      res.on("error", () => {});
      more();
      return;
    }
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

# A remote source may refer only to remote sources (SPEC 1.1): a catalog served over HTTP
# that imports, names as a schema or `$ref`s a local file is refused before the file is
# read, and nothing of the file shows in the messages.
cat > "$WORK/site/evil.flow.yaml" <<'YAML'
import:
  - file:///etc/passwd
collections:
  - name: evil/things
    schema: file:///etc/passwd#/root
    key: [/id]
  - name: evil/refs
    schema: schemas/evil.schema.yaml
    key: [/id]
YAML
cat > "$WORK/site/schemas/evil.schema.yaml" <<'YAML'
type: object
properties:
  id: {type: string}
  secret: {$ref: "file:///etc/passwd#/root"}
required: [id]
YAML
printf 'import:\n  - http://127.0.0.1:%s/evil.flow.yaml\n' "$port" > "$WORK/evil-root.yaml"
check_evil() {
  expect_err "http://127.0.0.1:$port/evil.flow.yaml:2:5: error: cannot read import \`/etc/passwd\`: a source fetched over HTTP may refer only to remote (http:// or https://) sources, never to local files"
  expect_err "http://127.0.0.1:$port/evil.flow.yaml:5:13: error: cannot read schema \`/etc/passwd\`: a source fetched over HTTP may refer only to remote"
  expect_err "http://127.0.0.1:$port/schemas/evil.schema.yaml:4:18: error: \$ref \`file:///etc/passwd#/root\` names a local file, \`/etc/passwd\`"
  grep -q 'root:' "$WORK/err" && fail "the content of /etc/passwd was shown"
  grep -q '^/etc/passwd' "$WORK/err" && fail "/etc/passwd was read"
  [[ $(grep -c 'error:' "$WORK/err") -eq 3 ]] || fail "expected exactly 3 errors"
}
expect_status 1 "$FLOWCTL" build --source "$WORK/evil-root.yaml" --catalog "$WORK/e.db"
check_evil
# The remote catalog as the root, too.
expect_status 1 "$FLOWCTL" build --source "http://127.0.0.1:$port/evil.flow.yaml" --catalog "$WORK/e.db"
check_evil

# A response over the 64 MiB limit of a source is cut off, announced size or not.
for q in "" "?sized"; do
  printf 'import:\n  - http://127.0.0.1:%s/huge.yaml%s\n' "$port" "$q" > "$WORK/huge.yaml"
  expect_status 1 timeout 60 "$FLOWCTL" build --source "$WORK/huge.yaml" --catalog "$WORK/h.db"
  expect_err "the response is larger than the limit of 64 MiB for a catalog source or schema"
done

# Offline: the same catalog builds from disk through --resource-map.
kill $server
expect_status 0 "$FLOWCTL" build --source "$WORK/flow.yaml" --catalog "$WORK/c2.db" \
  --resource-map "http://127.0.0.1:$port/=$WORK/site/"
# A mapped URL is still remote: the mapped catalog may not reach local files either.
expect_status 1 "$FLOWCTL" build --source "$WORK/evil-root.yaml" --catalog "$WORK/e.db" \
  --resource-map "http://127.0.0.1:$port/=$WORK/site/"
check_evil
finish
