#!/usr/bin/env node
// SPDX-License-Identifier: BSD-3-Clause
//
// A test backend for the demo and the e2e tests: the "Node.js instance on port 300x"
// that rondo balances over. Node's standard library only (Node >= 18).
//
//   node backend.js [--http-port 3001] [--udp-port 4001] [--host ::] [--id N]
//
// --host: the address to listen on, default :: (every address of both families: a v4
// client is seen as ::ffff:a.b.c.d, which changes nothing in the answers). A v4 address
// (e.g. a DSR VIP on lo) makes the UDP socket udp4, a v6 one udp6.
// HTTP: any GET answers "hello from backend :<http-port>\n" (keep-alive capable);
//       GET /slow?ms=N waits N ms first (a connection held open for N ms).
//       GET /bytes?n=N answers N deterministic bytes (application/octet-stream, header
//       X-Backend: <http-port>): 4096-byte blocks, block k = k as a little-endian uint64
//       then bytes 8..4095 of a fixed xorshift32 stream (seed 0x2545f491, one byte per
//       step: the low byte), sent as fast as the reader takes them (a long download).
// UDP:  each datagram is answered with "udp from backend :<udp-port> <payload>".
// --id N: say N instead of the port, in both answers: backends that share a port, each on
// its own address (direct server return: every backend listens on the VIP's port).
// Prints "listening http :PORT" / "listening udp :PORT" once bound; exits 0 on
// SIGTERM/SIGINT.
'use strict';

const http = require('http');
const dgram = require('dgram');

const kMaxSlowMs = 600000;
const kBlock = 4096;
const kMaxBytes = 4 * 1024 * 1024 * 1024;

// Bytes 8..4095 of every block of /bytes (the first 8 are the block's index).
const kPattern = (() => {
  const b = Buffer.alloc(kBlock);
  let x = 0x2545f491;
  for (let i = 0; i < kBlock; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
})();

// Stream n bytes of the /bytes pattern to res, waiting for 'drain' when the socket is full.
function sendBytes(res, n, port) {
  res.writeHead(200, {
    'Content-Type': 'application/octet-stream',
    'Content-Length': n,
    'X-Backend': String(port),
  });
  let sent = 0;
  let block = 0;
  const more = () => {
    while (sent < n) {
      const chunk = Buffer.from(kPattern);
      chunk.writeBigUInt64LE(BigInt(block++), 0);
      const part = n - sent < kBlock ? chunk.subarray(0, n - sent) : chunk;
      sent += part.length;
      if (!res.write(part)) {
        if (sent < n) res.once('drain', more);
        else res.end();
        return;
      }
    }
    res.end();
  };
  res.on('close', () => { sent = n; });
  more();
}

function parseArgs(argv) {
  const opts = { httpPort: 0, udpPort: 0, host: '::', id: 0 };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    switch (argv[i]) {
      case '--http-port': opts.httpPort = Number(value); i++; break;
      case '--udp-port': opts.udpPort = Number(value); i++; break;
      case '--host': opts.host = value; i++; break;
      case '--id': opts.id = Number(value); i++; break;
      default:
        console.error(`usage: backend.js [--http-port N] [--udp-port N] [--host ADDR] [--id N] (got ${argv[i]})`);
        process.exit(2);
    }
  }
  for (const p of [opts.httpPort, opts.udpPort, opts.id]) {
    if (!Number.isInteger(p) || p < 0 || p > 65535) {
      console.error(`backend.js: bad port or id ${p}`);
      process.exit(2);
    }
  }
  if (!opts.httpPort && !opts.udpPort) {
    console.error('backend.js: give --http-port and/or --udp-port');
    process.exit(2);
  }
  return opts;
}

function startHttp(port, host, id) {
  const body = `hello from backend :${id || port}\n`;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://backend');
    let delay = 0;
    if (url.pathname === '/bytes') {
      const n = Math.min(Math.max(Math.floor(Number(url.searchParams.get('n'))) || 0, 0), kMaxBytes);
      req.resume();
      req.on('end', () => sendBytes(res, n, id || port));
      return;
    }
    if (url.pathname === '/slow') {
      delay = Math.min(Math.max(Number(url.searchParams.get('ms')) || 0, 0), kMaxSlowMs);
    }
    const answer = () => {
      res.writeHead(200, {
        'Content-Type': 'text/plain',
        'Content-Length': Buffer.byteLength(body),
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    // Drain any request body before answering, so keep-alive framing stays right.
    req.resume();
    req.on('end', () => (delay ? setTimeout(answer, delay) : answer()));
  });
  // A long-lived keep-alive connection must not be closed by the server's idle timer
  // (Node's default is 5 s) while a test holds it; /slow must outlive requestTimeout.
  server.keepAliveTimeout = 10 * 60 * 1000;
  server.headersTimeout = server.keepAliveTimeout + 1000;
  server.requestTimeout = kMaxSlowMs + 60 * 1000;
  server.on('error', (err) => {
    console.error(`backend.js: http :${port}: ${err.message}`);
    process.exit(1);
  });
  server.listen(port, host, () => console.log(`listening http :${port}`));
  return server;
}

function startUdp(port, host, id) {
  // udp6 on :: takes v4 datagrams too (IPV6_V6ONLY off): a v4 client's address arrives
  // v4-mapped and the answer goes back to it the same way.
  const sock = dgram.createSocket(host.includes(':') ? { type: 'udp6', ipv6Only: false } : 'udp4');
  sock.on('message', (msg, rinfo) => {
    const reply = Buffer.concat([Buffer.from(`udp from backend :${id || port} `), msg]);
    sock.send(reply, rinfo.port, rinfo.address);
  });
  sock.on('error', (err) => {
    console.error(`backend.js: udp :${port}: ${err.message}`);
    process.exit(1);
  });
  sock.bind(port, host, () => console.log(`listening udp :${port}`));
  return sock;
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const servers = [];
  if (opts.httpPort) servers.push(startHttp(opts.httpPort, opts.host, opts.id));
  if (opts.udpPort) servers.push(startUdp(opts.udpPort, opts.host, opts.id));
  const stop = () => {
    for (const s of servers) {
      if (s.closeAllConnections) s.closeAllConnections();
      s.close();
    }
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
