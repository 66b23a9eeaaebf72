#!/usr/bin/env bash
# `flowctl docs` (issue 8): writes the site for catalog-examples and for a catalog whose
# values hold markup; the output directory's rules (created, refused when it holds other
# files, stale pages removed on a rerun); errors; then docs_site.js checks the pages in
# headless Chromium (the Debian package, which scripts/test.sh installs) and runs a page's
# DuckDB query over a real lake. Screenshots go to build/test-artifacts/docs/.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
artifacts=$(cd "$(dirname "$FLOWCTL")" && pwd)/test-artifacts/docs
rm -rf "$artifacts"

if ! command -v "${CHROMIUM:-chromium}" >/dev/null 2>&1; then
  echo "FAIL: chromium is not installed; scripts/test.sh installs it (apt-get install --no-install-recommends chromium)" >&2
  exit 1
fi
if ! "$REPO/scripts/npm-deps.sh" >"$WORK/npm.log" 2>&1; then
  cat "$WORK/npm.log" >&2
  echo "FAIL: cannot install the test npm packages into $REPO/.deps/npm (scripts/npm-deps.sh failed)" >&2
  exit 1
fi
export NODE_PATH="$REPO/.deps/npm/node_modules"

# The examples: 6 collection pages, the index and the lineage.
expect_status 0 "$FLOWCTL" docs --source "$REPO/catalog-examples/flow.yaml" --output ex
expect_err "wrote 8 pages (10 files) to ex in"
for f in index.html lineage.html style.css search.js .flowctl-docs collections/bikeshare~rides.html \
  collections/bikeshare~station-activity.html; do
  [[ -s ex/$f ]] || fail "the site lacks $f"
done
expect_eq "collection pages" "$(ls ex/collections | wc -l)" "6"
# No page refers to anything but the site's own files.
if grep -rlE '(src|href)="(https?:)?//' ex; then fail "a page links outside the site"; fi

# Values that hold markup; a partitioned collection with a nested one (t/evil/child), whose
# fragments the page's lake query must not read.
mkdir evil
cat >evil/flow.yaml <<'YAML'
collections:
  - name: t/evil
    key: [/id]
    schema:
      title: "</script><script>window.pwned = 2</script>"
      description: "<script>window.pwned = 1; alert('x')</script> & <b>bold</b>"
      type: object
      properties:
        id: {type: integer}
        region: {type: string}
      required: [id, region]
    projections:
      region: {location: /region, partition: true}
  - name: t/evil/child
    key: [/id]
    schema: {type: object, properties: {id: {type: integer}}, required: [id]}
YAML
expect_status 0 "$FLOWCTL" docs --source evil/flow.yaml --output evil-site --data-dir data
grep -q '<script>window' evil-site/collections/t~evil.html && fail "the description's <script> is in the page unescaped"
printf '%s\n' '{"id":1,"region":"EU"}' '{"id":2,"region":"US"}' '{"id":3,"region":"EU"}' >docs.jsonl
expect_status 0 "$FLOWCTL" ingest t/evil docs.jsonl --source evil/flow.yaml --data-dir data
printf '%s\n' '{"id":4}' >child.jsonl
expect_status 0 "$FLOWCTL" ingest t/evil/child child.jsonl --source evil/flow.yaml --data-dir data

# The output directory: a directory of other files is refused and left alone; a rerun
# replaces the site and removes the page of a collection that is gone, not other files.
mkdir foreign && echo keep >foreign/notes.txt
expect_status 1 "$FLOWCTL" docs --source evil/flow.yaml --output foreign
expect_err "error: foreign is not empty and has no .flowctl-docs file, so it is not an earlier \`flowctl docs\` output; nothing was written"
expect_eq "foreign directory untouched" "$(ls foreign)" "notes.txt"
cp -r evil-site rerun
echo mine >rerun/mine.txt
sed -i 's|^  - name: t/evil/child|  - name: t/other|' evil/flow.yaml
expect_status 0 "$FLOWCTL" docs --source evil/flow.yaml --output rerun --data-dir data
expect_err "wrote 4 pages (6 files, removed 1 stale) to rerun"
[[ -e rerun/collections/t~evil~child.html ]] && fail "the stale page of t/evil/child was not removed"
[[ -e rerun/collections/t~other.html && -e rerun/mine.txt ]] || fail "the rerun lost a page or an unrelated file"
sed -i 's|^  - name: t/other|  - name: t/evil/child|' evil/flow.yaml

# Errors: a catalog error writes nothing; an output that cannot be created names the path.
printf 'collections:\n  - name: t/x\n    key: [/id]\n    schema: {type: object}\n    projectons: {}\n' >bad.flow.yaml
expect_status 1 "$FLOWCTL" docs --source bad.flow.yaml --output bad-site
expect_err "bad.flow.yaml:5:5: error: unknown key \`projectons\`"
expect_err "; bad-site was not written"
[[ -e bad-site ]] && fail "a catalog with errors left a site"
echo x >afile
expect_status 3 "$FLOWCTL" docs --source evil/flow.yaml --output afile/site
expect_err "error: cannot create afile/site"
expect_status 2 "$FLOWCTL" docs --source evil/flow.yaml
expect_err "--output is required"
expect_status 0 "$FLOWCTL" docs --help
grep -q -- "--data-dir" "$WORK/out" && grep -q ".flowctl-docs" "$WORK/out" || fail "docs --help lacks --data-dir or the marker file"

# In the browser.
if ! node "$REPO/tests/e2e/docs_site.js" ex evil-site "$artifacts" "$WORK"; then
  fail "browser checks failed (see above)"
fi
finish
