// In-process echo for bench/instructions.js: a serve() (or createServer) echo server and 10 coloop
// client connections in one loop, N round trips of 64 B in all, native backend.
//   node bench/lib/echo-inproc.mjs N serve|proto
// COLOOP_DIST points at another build of dist/ (to compare two versions of the driver).
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = process.env.COLOOP_DIST ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist');
const m = await import(path.join(dist, 'index.js'));
const N = +(process.argv[2] ?? 20000);
const mode = process.argv[3] ?? 'serve';
const shared = new Uint8Array(65536);
class P { connectionMade(t) { this.t = t; } getBuffer() { return shared; } bufferUpdated(n) { this.t.write(shared, 0, n); } }
function* echo(conn) { const buf = new Uint8Array(256); for (;;) { const n = yield* conn.readInto(buf); if (n === 0) return; yield* conn.write(buf, 0, n); } }
await m.run(function* () {
  const server = mode === 'proto' ? yield* m.createServer(() => new P(), { host: '127.0.0.1', port: 0 }) : yield* m.serve({ host: '127.0.0.1', port: 0 }, echo);
  const conns = [];
  for (let c = 0; c < 10; c++) conns.push(yield* m.connect({ host: '127.0.0.1', port: server.port }));
  const tasks = [];
  for (const conn of conns) tasks.push(yield* m.spawn(function* () {
    const msg = new Uint8Array(64), buf = new Uint8Array(64);
    for (let i = 0; i < N / 10; i++) { yield* conn.write(msg); let got = 0; while (got < 64) got += yield* conn.readInto(buf, got, 64 - got); }
    conn.close();
  }));
  for (const t of tasks) yield* t;
  server.close();
}, { backend: 'native' });
