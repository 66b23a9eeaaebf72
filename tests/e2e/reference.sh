#!/usr/bin/env bash
# The user reference stays complete and self-contained:
# 1. every property name `flowctl json-schema` defines appears in
#    docs/reference/catalog.md, as `name` in backticks or as a YAML key `name:`;
# 2. no link in README.md or docs/**/*.md leaves the repository (no URL scheme, no
#    relative path that climbs out of it), every relative link's file exists, and every
#    #anchor names a heading of its page.
source "$(dirname "$0")/lib.sh"

expect_status 0 "$FLOWCTL" json-schema
cp "$WORK/out" "$WORK/schema.json"

node - "$WORK/schema.json" "$REPO" <<'EOF' || fail "see the lines above"
const fs = require("fs");
const path = require("path");
const [schemaFile, repo] = process.argv.slice(2);
let problems = 0;
const problem = (text) => { console.error("  " + text); problems++; };

// 1. Property names of the catalog's JSON Schema.
const names = new Set();
const notSchemas = new Set(["enum", "const", "default", "examples", "required", "pattern",
                            "type", "description", "title", "$id", "$schema", "$ref"]);
function walk(schema) {
  if (Array.isArray(schema)) return schema.forEach(walk);
  if (schema === null || typeof schema !== "object") return;
  for (const [keyword, value] of Object.entries(schema)) {
    if (keyword === "properties" || keyword === "patternProperties" ||
        keyword === "$defs" || keyword === "definitions") {
      for (const [name, sub] of Object.entries(value)) {
        if (keyword === "properties") names.add(name);
        walk(sub);
      }
    } else if (!notSchemas.has(keyword)) {
      walk(value);  // items, additionalProperties, oneOf, anyOf, allOf, not, if/then/else, ...
    }
  }
}
walk(JSON.parse(fs.readFileSync(schemaFile, "utf8")));
if (names.size < 20) problem(`json-schema defines only ${names.size} properties`);

const catalogMd = path.join(repo, "docs/reference/catalog.md");
const reference = fs.readFileSync(catalogMd, "utf8");
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const missing = [...names].sort().filter((name) => {
  const backticked = reference.includes("`" + name + "`");
  const yamlKey = new RegExp(`(^|[\\s{,\\[-])${escape(name)}:`, "m").test(reference);
  return !backticked && !yamlKey;
});
for (const name of missing) {
  problem(`property \`${name}\` of flowctl json-schema is not in docs/reference/catalog.md`);
}

// 2. Links of README.md and docs/**/*.md.
function markdownFiles(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? markdownFiles(p) : e.name.endsWith(".md") ? [p] : [];
  });
}
// GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens.
function anchors(text) {
  const seen = new Map();
  const out = new Set();
  for (const line of stripCode(text).split("\n")) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    let slug = m[1].toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
    const n = seen.get(slug) || 0;
    seen.set(slug, n + 1);
    out.add(n ? `${slug}-${n}` : slug);
  }
  for (const m of text.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) out.add(m[1]);
  return out;
}
// Fenced blocks and code spans hold examples, not links. Heading lines keep their text.
function stripCode(text) {
  return text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "")
             .replace(/`[^`\n]*`/g, (span) => span.replace(/[\[\]()]/g, " "));
}
const files = [path.join(repo, "README.md"), ...markdownFiles(path.join(repo, "docs"))];
for (const file of files) {
  const rel = path.relative(repo, file);
  const text = fs.readFileSync(file, "utf8");
  if (/SPEC\.md/.test(text)) problem(`${rel}: names SPEC.md, which is not part of the repository`);
  const body = stripCode(text);
  const targets = [];
  for (const m of body.matchAll(/\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)/g)) targets.push(m[1]);
  for (const m of body.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(\s|$)/gm)) targets.push(m[1]);
  for (const m of body.matchAll(/<(https?:[^>\s]+)>/g)) targets.push(m[1]);
  for (const m of body.matchAll(/(?:href|src)="([^"]*)"/g)) targets.push(m[1]);
  for (const target of targets) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("//")) {
      problem(`${rel}: link \`${target}\` points outside the repository`);
      continue;
    }
    const [file_part, anchor] = target.split("#", 2);
    const resolved = file_part ? path.resolve(path.dirname(file), decodeURI(file_part)) : file;
    const inside = path.relative(repo, resolved);
    if (inside.startsWith("..") || path.isAbsolute(inside)) {
      problem(`${rel}: link \`${target}\` points outside the repository`);
      continue;
    }
    if (!fs.existsSync(resolved)) {
      // Outputs of scripts/quickstart.sh are linked from the README before they exist.
      if (!inside.startsWith("catalog-examples/out/")) problem(`${rel}: link \`${target}\`: no such file`);
      continue;
    }
    if (anchor && resolved.endsWith(".md") && !anchors(fs.readFileSync(resolved, "utf8")).has(anchor)) {
      problem(`${rel}: link \`${target}\`: no heading with anchor #${anchor}`);
    }
  }
}
process.exit(problems ? 1 : 0);
EOF
finish
