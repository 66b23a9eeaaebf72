#!/usr/bin/env bash
# version, --help everywhere, and json-schema output that is a JSON Schema.
source "$(dirname "$0")/lib.sh"
expect_status 0 "$FLOWCTL" version
grep -qE '^flowctl [0-9]+\.[0-9]+\.[0-9]+$' "$WORK/out" || fail "version output: $(cat "$WORK/out")"
for cmd in "" build json-schema version; do
  expect_status 0 "$FLOWCTL" $cmd --help
  grep -q "Usage:" "$WORK/out" || fail "no usage for '$cmd --help'"
done
expect_status 0 "$FLOWCTL" json-schema
node -e '
  const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  if (!s.$schema || s.type !== "object" || !s.properties.collections) process.exit(1);
' "$WORK/out" || fail "json-schema output is not the catalog JSON Schema"
# Errors are coloured only on a terminal or when asked not to be.
printf 'collections: 3\n' > "$WORK/bad.yaml"
expect_status 1 "$FLOWCTL" build --source "$WORK/bad.yaml" --catalog "$WORK/c.db"
if grep -q $'\033' "$WORK/err"; then fail "colour codes written to a pipe"; fi
finish
