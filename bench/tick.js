// One tick's cost with N ready events, native vs pure-JS backend.
//
// N connection pairs live in this process. Each round, N client tasks write one byte each and wait
// for it to come back from N echo tasks: the server side sees N ready sockets, then the client
// side sees N ready sockets, so a round is two ticks of N events each (plus the 2N one-byte
// send/recv system calls, the same for both backends). Reported: µs per round and per event.
// Usage: node bench/tick.js [--quick]
import { all, connect, run, serve, spawn } from '../dist/index.js';
import { loadNative } from '../dist/native.js';
import { machine, measure, save } from './harness.js';

const quick = process.argv.includes('--quick');
const backends = loadNative() ? ['native', 'js'] : ['js'];
const sizes = [1, 64, 1024];

function* echo(conn) {
  const buf = new Uint8Array(64);
  for (;;) {
    const n = yield* conn.readInto(buf);
    if (n === 0) return;
    yield* conn.write(buf, 0, n);
  }
}

/** Runs `rounds` rounds over `n` pairs; returns once all are closed. */
function rounds(backend, n, count) {
  return run(
    function* () {
      const server = yield* serve({ host: '127.0.0.1', port: 0, backlog: 2048 }, echo);
      const conns = yield* all(Array.from({ length: n }, () => connect({ port: server.port })));
      const one = new Uint8Array([42]);
      const back = new Uint8Array(1);
      const clients = [];
      for (const conn of conns) {
        clients.push(
          yield* spawn(function* () {
            for (let r = 0; r < count; r++) {
              yield* conn.write(one);
              if ((yield* conn.readInto(back)) !== 1) throw new Error('lost a byte');
            }
            conn.close();
          }),
        );
      }
      for (const c of clients) yield* c;
      server.close();
    },
    { backend },
  );
}

const rows = [];
let md = `# Tick cost with N ready events\n\n\`node bench/tick.js\` on ${machine().cpu}, Node ${process.version}, commit ${machine().commit}.\n`;
md += 'A round = N one-byte echoes in one process: two ticks of N ready events each. Median of alternated rounds.\n\n';
md += '| N | backend | µs per round | ns per event | vs js |\n|---:|---|---:|---:|---:|\n';
for (const n of sizes) {
  const count = Math.max(20, Math.round((quick ? 2_000 : 20_000) / n));
  process.stderr.write(`running: N = ${n}\n`);
  const results = await measure(
    backends.map((backend) => ({ name: backend, ops: count, fn: () => rounds(backend, n, count) })),
    { rounds: quick ? 3 : 5, warmup: 1 },
  );
  const js = results.find((r) => r.name === 'js');
  for (const r of results) {
    const usPerRound = 1e6 / r.median;
    rows.push({ n, backend: r.name, usPerRound, nsPerEvent: (usPerRound * 1000) / (2 * n), min: 1e6 / r.max, max: 1e6 / r.min });
    md += `| ${n} | ${r.name} | ${usPerRound.toFixed(1)} | ${((usPerRound * 1000) / (2 * n)).toFixed(0)} | ${(r.median / js.median).toFixed(2)}× faster |\n`.replace('1.00× faster', '1.00×');
  }
}
console.log(md);
if (!quick) {
  const saved = save('tick', { machine: machine(), rows }, md);
  console.log(`saved ${saved.json} and ${saved.md}`);
}
