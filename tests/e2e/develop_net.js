// Raw-socket clients of develop_api.sh (node `net`), for what curl cannot do.
//
//   node develop_net.js load URL N FIRST_ID
//     Opens N connections at once; once all are connected, each sends one request on its
//     own connection: POST /ingest of one acme/orders document {id: FIRST_ID + i} (every
//     other connection), or GET /healthz. Prints `ok N` when every one answered 200 with the
//     expected body, else each failure and exits 1.
//
//   node develop_net.js cut URL ID
//     Sends a PUT /ingest with `Content-Length: 1000` and a valid-looking first half of the
//     body (a document {id: ID}), then closes the connection. Prints `cut` (and whatever the
//     server answered, which should be nothing).
//
//   node develop_net.js slow URL OUT_FILE ID
//     Two clients: `idle` connects and sends nothing; `slow` sends an ingest request of a
//     document {id: ID} one byte per second. Writes OUT_FILE (JSON) when both were closed
//     by the server, or after 45 s: {idle: {closedAfterMs, received}, slow: {...,
//     bytesSent}}; closedAfterMs is null when the server never closed the connection.
"use strict";
const net = require("net");
const fs = require("fs");

const [mode, url, ...rest] = process.argv.slice(2);
const { hostname, port } = new URL(url);

function request(method, path, body, extra = "") {
  return (
    `${method} ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: close\r\n${extra}` +
    (body === null ? "\r\n" : `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
  );
}

if (mode === "load") {
  const n = parseInt(rest[0], 10);
  const first = parseInt(rest[1], 10);
  const sockets = [];
  let connected = 0;
  let finished = 0;
  const failures = [];
  const timer = setTimeout(() => {
    console.log(`timeout: ${finished} of ${n} answered (${connected} connected)`);
    process.exit(1);
  }, 20000);
  const done = () => {
    if (++finished < n) return;
    clearTimeout(timer);
    if (failures.length) {
      for (const f of failures.slice(0, 10)) console.log(f);
      console.log(`${failures.length} of ${n} failed`);
      process.exit(1);
    }
    console.log(`ok ${n}`);
    process.exit(0);
  };
  for (let i = 0; i < n; i++) {
    const s = net.connect(port, hostname);
    let data = "";
    s.on("connect", () => {
      if (++connected === n) {
        sockets.forEach((t, j) => {
          if (j % 2 === 0) {
            const doc = { id: first + j, customer: `load${j % 7}`, total: 1 };
            t.write(request("POST", "/ingest", JSON.stringify({ "acme/orders": [doc] })));
          } else {
            t.write(request("GET", "/healthz", null));
          }
        });
      }
    });
    s.on("data", (d) => (data += d));
    s.on("error", (e) => {
      failures.push(`connection ${i}: ${e.message}`);
    });
    s.on("close", () => {
      const status = data.split(" ")[1];
      const body = data.split("\r\n\r\n").slice(1).join("\r\n\r\n");
      const want = i % 2 === 0 ? /^\{"Offsets":\{"acme\/orders\/pivot=00":\d+\}\}\n$/ : /^ok\n$/;
      if (status !== "200" || !want.test(body)) failures.push(`connection ${i}: ${JSON.stringify(data.slice(0, 300))}`);
      done();
    });
    sockets.push(s);
  }
} else if (mode === "cut") {
  const id = parseInt(rest[0], 10);
  const body = JSON.stringify({ "acme/orders": [{ id, customer: "cut", total: 1 }] }).padEnd(1000, " ");
  const s = net.connect(port, hostname);
  let data = "";
  s.on("data", (d) => (data += d));
  s.on("connect", () => {
    s.write(
      `PUT /ingest HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/json\r\n` +
        `Content-Length: 1000\r\n\r\n`
    );
    s.write(body.slice(0, 500), () => {
      setTimeout(() => {
        console.log(`cut${data ? " " + JSON.stringify(data) : ""}`);
        s.destroy();
        process.exit(0);
      }, 200);
    });
  });
  s.on("error", (e) => {
    console.log(`error ${e.message}`);
    process.exit(1);
  });
} else if (mode === "slow") {
  const [out, idText] = rest;
  const id = parseInt(idText, 10);
  const result = {};
  let open = 2;
  const write = () => {
    fs.writeFileSync(out, JSON.stringify(result) + "\n");
    process.exit(0);
  };
  const cap = setTimeout(write, 45000);
  const track = (name, onConnect) => {
    const start = Date.now();
    const r = (result[name] = { closedAfterMs: null, received: "", bytesSent: 0 });
    const s = net.connect(port, hostname);
    s.on("connect", () => onConnect(s, r));
    s.on("data", (d) => (r.received += d));
    s.on("error", (e) => (r.error = e.message));
    s.on("close", () => {
      r.closedAfterMs = Date.now() - start;
      if (--open === 0) {
        clearTimeout(cap);
        write();
      }
    });
    return s;
  };
  track("idle", () => {});
  const text = request("PUT", "/ingest", JSON.stringify({ "acme/orders": [{ id, customer: "slow", total: 1 }] }));
  track("slow", (s, r) => {
    const tick = setInterval(() => {
      if (s.destroyed || r.bytesSent >= text.length) return clearInterval(tick);
      s.write(text[r.bytesSent++]);
    }, 1000);
    s.on("close", () => clearInterval(tick));
  });
  console.log("connected");
} else {
  console.error("usage: node develop_net.js load|cut|slow URL ...");
  process.exit(2);
}
