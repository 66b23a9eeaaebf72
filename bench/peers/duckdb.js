// DuckDB side of the peer comparisons in bench/ (combine_bench.sh, ingest_bench.sh): runs
// one SQL script in a fresh in-memory DuckDB (@duckdb/node-api, from scripts/npm-deps.sh's
// .deps/npm on NODE_PATH) with `SET threads=THREADS`, and prints DuckDB's version and the
// statements it ran to stderr. Process start-up and loading DuckDB are part of what the
// benchmark times, as flowctl's start-up is part of its figures.
//
//   node duckdb.js THREADS SQL_FILE
//
// SQL_FILE holds statements separated by lines that are just `;`.
'use strict';
const fs = require('fs');
const { DuckDBInstance } = require('@duckdb/node-api');

const [threads, sqlFile] = process.argv.slice(2);
if (!/^[1-9][0-9]*$/.test(threads || '') || !sqlFile) {
  process.stderr.write('usage: node duckdb.js THREADS SQL_FILE\n');
  process.exit(2);
}
const statements = fs
  .readFileSync(sqlFile, 'utf8')
  .split(/^;$/m)
  .map((s) => s.trim())
  .filter((s) => s);

(async () => {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  await conn.run(`SET threads = ${threads}`);
  const version = (await conn.runAndReadAll('SELECT version() AS v')).getRowObjectsJson()[0].v;
  process.stderr.write(`duckdb ${version}, threads ${threads}\n`);
  for (const sql of statements) {
    process.stderr.write(`duckdb> ${sql.replace(/\s+/g, ' ')}\n`);
    await conn.run(sql);
  }
})().catch((e) => {
  process.stderr.write(`duckdb.js: ${e.message}\n`);
  process.exit(1);
});
