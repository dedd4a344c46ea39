#!/usr/bin/env node
// Stand-in for `coloop serve` / `coloop load` (src/cli.ts) with the same arguments and output, so
// the suite runs before (or without) the real CLI. The suite prefers dist/cli.js when it exists.
//   node bench/echo/stub-cli.js serve --port P [--host H] [--backend native|js|node] [--protocol]
//   node bench/echo/stub-cli.js load --host H --port P --conns N --size B --duration S [--pipeline D] [--json]
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function parse(argv) {
  const out = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) out._.push(a);
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) out[a.slice(2)] = argv[++i];
    else out[a.slice(2)] = true;
  }
  return out;
}


async function serve(a) {
  const host = a.host ?? '127.0.0.1';
  const port = Number(a.port ?? 0);
  const backend = a.backend ?? 'native';
  if (backend === 'node') {
    const server = net.createServer({ noDelay: true }, (s) => {
      s.on('error', () => s.destroy());
      s.pipe(s);
    });
    server.listen({ host, port, backlog: 4096 }, () => {
      const ad = server.address();
      console.log(`listening on ${ad.address}:${ad.port} (node:net)`);
    });
    process.on('SIGTERM', () => process.exit(0));
    return;
  }
  const coloop = await import(path.join(root, 'dist/index.js'));
  const loop = new coloop.Loop({ backend });
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
  await loop.runUntilComplete(function* () {
    let server;
    if (a.protocol) {
      server = yield* coloop.createServer(
        () => {
          let t;
          return {
            connectionMade(tr) { t = tr; },
            dataReceived(data) { t.write(data); },
          };
        },
        { host, port, backlog: 4096 },
      );
    } else {
      server = yield* coloop.serve({ host, port, backlog: 4096 }, function* (conn) {
        const buf = new Uint8Array(64 * 1024);
        for (;;) {
          const n = yield* conn.readInto(buf);
          if (n === 0) return;
          yield* conn.write(buf, 0, n);
        }
      });
    }
    console.log(`listening on ${server.address}:${server.port} (coloop ${backend}${a.protocol ? ' protocol' : ''}, stub)`);
  });
}

// Latency histogram: exact below 2048 µs, then 1024 sub-buckets per power of two (~0.1%).
class Histogram {
  constructor() { this.counts = new Float64Array(2048 + 40 * 1024); this.n = 0; }
  record(us) {
    let v = Math.max(0, Math.floor(us));
    let i;
    if (v < 2048) i = v;
    else {
      const msb = 31 - Math.clz32(v);
      i = 2048 + (msb - 11) * 1024 + ((v >>> (msb - 10)) & 1023);
    }
    if (i >= this.counts.length) i = this.counts.length - 1;
    this.counts[i]++;
    this.n++;
  }
  value(i) {
    if (i < 2048) return i;
    const k = i - 2048, msb = 11 + Math.floor(k / 1024), sub = k % 1024;
    return (1024 + sub) * 2 ** (msb - 10);
  }
  pct(p) {
    if (this.n === 0) return null;
    const target = Math.ceil(this.n * p);
    let acc = 0;
    for (let i = 0; i < this.counts.length; i++) {
      acc += this.counts[i];
      if (acc >= target) return this.value(i);
    }
    return null;
  }
}

async function load(a) {
  const host = a.host ?? '127.0.0.1';
  const port = Number(a.port);
  const conns = Number(a.conns ?? 100);
  const size = Number(a.size ?? 64);
  const depth = Number(a.pipeline ?? 1);
  const duration = Number(a.duration ?? 5);
  const payload = Buffer.alloc(size * depth, 0x78);
  const hist = new Histogram();
  let messages = 0, bytes = 0, errors = 0, connectFailures = 0;
  let measuring = false, stopped = false;
  const sockets = [];

  function startConn(s) {
    const sent = new Float64Array(depth); // ring of send times
    let head = 0, tail = 0, inFlight = 0, got = 0;
    const send = (k) => {
      const now = performance.now();
      for (let j = 0; j < k; j++) { sent[tail] = now; tail = (tail + 1) % depth; }
      inFlight += k;
      s.write(k === depth ? payload : payload.subarray(0, k * size));
    };
    s.on('data', (chunk) => {
      got += chunk.length;
      let done = 0;
      const now = performance.now();
      while (got >= size && inFlight > 0) {
        got -= size;
        inFlight--;
        if (measuring) { hist.record((now - sent[head]) * 1000); messages++; bytes += size; }
        head = (head + 1) % depth;
        done++;
      }
      if (done > 0 && !stopped) send(done);
    });
    send(depth);
  }

  // Connect with a bounded number of handshakes in flight.
  const deadline = Date.now() + 20_000;
  let next = 0;
  await new Promise((resolve) => {
    let inFlight = 0, finished = 0;
    const pump = () => {
      while (inFlight < 500 && next < conns) {
        inFlight++; next++;
        const s = net.connect({ host, port, noDelay: true });
        let ok = false;
        s.once('connect', () => { ok = true; sockets.push(s); inFlight--; finished++; pump(); if (finished === conns) resolve(); });
        s.on('error', () => {
          if (!ok) { connectFailures++; inFlight--; finished++; pump(); if (finished === conns) resolve(); }
          else if (!stopped) errors++;
        });
      }
      if (Date.now() > deadline) resolve();
    };
    pump();
  });
  const cpu0 = process.cpuUsage();
  for (const s of sockets) startConn(s);
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, duration * 1000));
  measuring = false;
  stopped = true;
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  for (const s of sockets) s.destroy();
  const out = {
    conns, size, pipeline: depth, duration: elapsed, messages, bytes,
    msgsPerSec: messages / elapsed, mbPerSec: bytes / elapsed / 1e6,
    latencyUs: { p50: hist.pct(0.5), p99: hist.pct(0.99), p999: hist.pct(0.999) },
    errors, connectFailures, clientCpuSec: (cpu.user + cpu.system) / 1e6,
  };
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(0);
}

const args = parse(process.argv.slice(2));
const cmd = args._[0];
if (cmd === 'serve') await serve(args);
else if (cmd === 'load') await load(args);
else {
  console.error('usage: stub-cli.js serve|load ...');
  process.exit(2);
}
