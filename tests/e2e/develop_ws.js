// WebSocket client of develop_api.sh, on the `ws` npm package (a real client).
// Usage: node develop_ws.js URL PROTOCOL [--per N] PHASE_FILE...
//   PROTOCOL is json/v1, csv/v1, tsv/v1, any other value to offer, or `-` to offer none.
//   Each PHASE_FILE's lines are sent in messages of N lines (default 1); a CSV/TSV header
//   (the first line of the first phase) is sent as its own message. After each phase the
//   client waits until the server has acknowledged every message sent so far
//   ("Processed"), so each phase is at least one transaction of its own. Then it closes
//   normally.
// Prints `protocol P` (the one the server chose), every server message as it arrives, and
// `closed CODE REASON` when the server closes the connection first, or `refused STATUS
// BODY` when it refuses the upgrade.
// Exit status: 0 everything acknowledged; 1 closed by the server or refused; 2 usage.
//
// Why the protocol goes in a header of our own: json/v1 etc. contain `/`, which is not a
// token character (RFC 6455 4.1 / RFC 7230), so `ws` (like browsers) refuses them as
// subprotocols in its constructor and would then refuse the server's echo. We offer it
// through `headers` and take the echo out of the handshake response before `ws` looks.
"use strict";
const fs = require("fs");
const WebSocket = require("ws");

const args = process.argv.slice(2);
let per = 1;
const rest = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--per") per = Math.max(1, parseInt(args[++i], 10));
  else rest.push(args[i]);
}
const [url, protocol, ...files] = rest;
if (!url || !protocol) {
  console.error("usage: node develop_ws.js URL PROTOCOL [--per N] PHASE_FILE...");
  process.exit(2);
}
const tabular = protocol === "csv/v1" || protocol === "tsv/v1";
const phases = files.map((file, p) => {
  const lines = fs.readFileSync(file, "utf8").split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  const messages = [];
  let start = 0;
  if (p === 0 && tabular && lines.length) {
    messages.push(lines[0] + "\n");
    start = 1;
  }
  for (let i = start; i < lines.length; i += per) messages.push(lines.slice(i, i + per).join("\n") + "\n");
  return messages;
});

const headers = protocol === "-" ? {} : { "Sec-WebSocket-Protocol": protocol };
const ws = new WebSocket(url, { headers, perMessageDeflate: false });
let sent = 0;
let phase = 0;
let done = false;
ws.on("upgrade", (res) => {
  console.log(`protocol ${res.headers["sec-websocket-protocol"] || "(none)"}`);
  delete res.headers["sec-websocket-protocol"];
});
ws.on("unexpected-response", (req, res) => {
  let body = "";
  res.on("data", (d) => (body += d));
  res.on("end", () => {
    console.log(`refused ${res.statusCode} ${body.trim()}`);
    process.exit(1);
  });
});
function next() {
  while (phase < phases.length && phases[phase].length === 0) phase++;
  if (phase >= phases.length) {
    done = true;
    ws.close(1000);
    return;
  }
  for (const m of phases[phase]) ws.send(m);
  sent += phases[phase].length;
  phase++;
}
ws.on("open", next);
ws.on("message", (data) => {
  const text = data.toString();
  console.log(text);
  try {
    const reply = JSON.parse(text);
    if (reply.Processed === sent) next();
  } catch (e) {
    // not JSON: printed above
  }
});
ws.on("close", (code, reason) => {
  if (!done) {
    console.log(`closed ${code} ${reason.toString()}`);
    process.exit(1);
  }
  process.exit(0);
});
ws.on("error", (e) => {
  console.log(`error ${e.message}`);
  process.exit(1);
});
