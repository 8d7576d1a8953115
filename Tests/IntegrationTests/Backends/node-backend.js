// Test backend for the proxy integration tests: Node's own http module, nothing else.
// Usage: node node-backend.js NAME  -> prints "listening PORT" once bound to 127.0.0.1 on a free port.
// With TLS_CERT and TLS_KEY (PEM files) it serves HTTPS; with TLS_CLIENT_CA as well it requires a client
// certificate signed by that CA.
'use strict';
const fs = require('fs');
const http = require('http');
const https = require('https');
const crypto = require('crypto');

const name = process.argv[2] || 'node';
let healthy = true;

function reply(res, status, object, extraHeaders) {
  const body = JSON.stringify(object);
  res.writeHead(status, Object.assign({
    'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'X-Backend': name,
  }, extraHeaders || {}));
  res.end(body);
}

function handle(req, res) {
  const url = new URL(req.url, 'http://backend');
  // Routes may be mounted under any one-segment prefix (/api/echo, /rr/echo): the prefix is ignored.
  const path = url.pathname.replace(/^\/[a-z0-9]+(?=\/(echo|upload|slow|stream|trailers|break|health|status|hello)\b)/, '');
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  req.on('data', (chunk) => { bytes += chunk.length; hash.update(chunk); });
  req.on('end', () => {
    if (path === '/ask') {
      // An on-demand TLS policy: names under ok.test may get a certificate.
      const domain = url.searchParams.get('domain') || '';
      return reply(res, domain.endsWith('.ok.test') ? 200 : 403, { domain });
    }
    if (path === '/echo' || path.startsWith('/echo/')) {
      return reply(res, 200, {
        backend: name, method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders,
        bodyBytes: bytes, sha256: hash.digest('hex'), trailers: req.trailers, httpVersion: req.httpVersion,
        tls: req.socket.encrypted ? {
          servername: req.socket.servername || null, alpn: req.socket.alpnProtocol || null,
          client: (req.socket.getPeerCertificate().subject || {}).CN || null, connection: connectionNumber(req.socket),
        } : null,
      });
    }
    if (path === '/upload') {
      return reply(res, 200, { backend: name, bytes: bytes, sha256: hash.digest('hex') });
    }
    if (path === '/slow') {
      const ms = Number(url.searchParams.get('ms') || '1000');
      return setTimeout(() => reply(res, 200, { backend: name, slept: ms }), ms);
    }
    if (path === '/stream') {
      // A body of unknown length (chunked), written with backpressure.
      let left = Number(url.searchParams.get('bytes') || '1048576');
      const chunk = Buffer.alloc(65536, 'x');
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'X-Backend': name });
      const pump = () => {
        while (left > 0) {
          const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
          left -= piece.length;
          if (!res.write(piece)) { res.once('drain', pump); return; }
        }
        res.end();
      };
      return pump();
    }
    if (path === '/trailers') {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Trailer': 'X-Checksum', 'X-Backend': name });
      res.write('part one\n');
      res.write('part two\n');
      res.addTrailers({ 'X-Checksum': 'abc123' });
      return res.end();
    }
    if (path === '/break') {
      // Sends a head and part of the declared body, then drops the connection.
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '1000', 'X-Backend': name });
      res.write('only a part');
      return setTimeout(() => req.socket.destroy(), 50);
    }
    if (path === '/health') {
      return reply(res, healthy ? 200 : 503, { backend: name, healthy: healthy });
    }
    if (path === '/health/fail') { healthy = false; return reply(res, 200, { backend: name, healthy: healthy }); }
    if (path === '/health/pass') { healthy = true; return reply(res, 200, { backend: name, healthy: healthy }); }
    if (path.startsWith('/status/')) {
      return reply(res, Number(path.slice(8)) || 500, { backend: name });
    }
    if (path === '/hello') {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 18 });
      return res.end('hello from backend');
    }
    reply(res, 404, { backend: name, error: 'no such path', path: path });
  });
}

// Numbers each TLS connection, so a test can see a pooled connection reused.
const connectionNumbers = new WeakMap();
let connectionsSeen = 0;
function connectionNumber(socket) {
  if (!connectionNumbers.has(socket)) connectionNumbers.set(socket, ++connectionsSeen);
  return connectionNumbers.get(socket);
}

const server = process.env.TLS_CERT
  ? https.createServer({
    cert: fs.readFileSync(process.env.TLS_CERT), key: fs.readFileSync(process.env.TLS_KEY),
    ca: process.env.TLS_CLIENT_CA ? fs.readFileSync(process.env.TLS_CLIENT_CA) : undefined,
    requestCert: Boolean(process.env.TLS_CLIENT_CA), rejectUnauthorized: Boolean(process.env.TLS_CLIENT_CA),
    ALPNProtocols: ['h2', 'http/1.1'],
  }, handle)
  : http.createServer(handle);

server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
