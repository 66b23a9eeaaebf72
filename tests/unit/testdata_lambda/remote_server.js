// HTTP server for the remote lambda tests (tests/unit/lambda_remote_test.cc). Listens on an
// ephemeral port of 127.0.0.1, prints it as the first line of stdout, and answers by path:
//   /echo          per row: [{method, contentType, connection, row}, {index}]
//   /status500     HTTP 500 with a plain-text body; /long500 the same with a 2000-byte body
//   /malformed     truncated JSON        /wronglength  one element whatever the rows
//   /notarray      a JSON object         /elementnotarray  row 1's element is an object
//   /hang          never answers (a lambda that never returns)
// It exits when its stdin closes, so it never outlives the test that started it.
'use strict';
const http = require('http');

let connections = 0;
const server = http.createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', () => {
    const send = (status, text, type = 'application/json') => {
      res.writeHead(status, { 'Content-Type': type });
      res.end(text);
    };
    let rows = [];
    try { rows = JSON.parse(body); } catch (e) { return send(400, 'bad request body: ' + e.message, 'text/plain'); }
    switch (req.url) {
      case '/echo':
        return send(200, JSON.stringify(rows.map((row, index) => [
          { method: req.method, contentType: req.headers['content-type'],
            connection: req.socket.id, row },
          { index },
        ])));
      case '/status500': return send(500, 'boom: the lambda failed', 'text/plain');
      case '/long500': return send(500, 'x'.repeat(2000), 'text/plain');
      case '/malformed': return send(200, '[[{"a":1}],');
      case '/wronglength': return send(200, '[[]]');
      case '/notarray': return send(200, '{"a":1}');
      case '/hang': return;  // the request stays open until the client gives up
      case '/elementnotarray': return send(200, JSON.stringify(rows.map((r, i) => (i === 1 ? { a: 1 } : []))));
      default: return send(404, 'no route ' + req.url, 'text/plain');
    }
  });
});
server.on('connection', (socket) => { socket.id = ++connections; });
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(server.address().port + '\n');
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
