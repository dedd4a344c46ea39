// Is a dedicated blocking mode worth having? Compares two ways of waking the same raw echo server
// (bench/lib/raw-echo-server.mjs): from Node's loop via uv_poll (what coloop does), and a JS loop
// around a blocking epoll_wait. Server and client pinned to different cores when taskset exists;
// modes alternated over rounds. Usage: node bench/wake-mode.js [--quick]
//
// Two questions: how many round trips each mode carries as fast as a node:net ping-pong client
// drives it, and what each spends per message at equal load: the C load client sends 100,000
// messages a second (load_epoll --rate, 100 connections x 64 B), and the server's CPU time over
// the measured window (its --hold brackets it) is divided by the messages. Linux only (/proc).
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { machine, save } from './harness.js';
import { buildLoadClient } from './lib/load-client.mjs';

const quick = process.argv.includes('--quick');
const seconds = quick ? 1 : 3;
const roundsCount = quick ? 2 : 5;
const hasTaskset = (() => {
  try {
    execFileSync('taskset', ['-c', '0', 'true']);
    return true;
  } catch {
    return false;
  }
})();
const pinned = (core, args) => (hasTaskset ? ['taskset', ['-c', String(core), ...args]] : [args[0], args.slice(1)]);
const here = new URL('./lib/', import.meta.url).pathname;

/** Runs `use(port, server)` against the raw echo server in `mode`, on core 0; kills it after. */
async function withServer(mode, use) {
  const [cmd, args] = pinned(0, [process.execPath, `${here}raw-echo-server.mjs`, mode]);
  const server = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise((resolve, reject) => {
      server.once('exit', (code) => reject(new Error(`server exited ${code}`)));
      server.stdout.once('data', (d) => resolve(Number(d.toString().trim().split(' ')[1])));
    });
    return await use(port, server);
  } finally {
    server.kill('SIGKILL');
  }
}

function once(mode, conns) {
  return withServer(mode, (port) => {
    const [ccmd, cargs] = pinned(1, [process.execPath, `${here}pingpong-client.mjs`, String(port), String(conns), '64', String(seconds)]);
    const out = execFileSync(ccmd, cargs, { encoding: 'utf8', timeout: (seconds + 20) * 1000 });
    return JSON.parse(out).tripsPerSec;
  });
}

/** utime and stime of a process in seconds (/proc/<pid>/stat, in clock ticks of 1/100 s). */
function cpuSec(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return [Number(f[11]) / 100, Number(f[12]) / 100];
}

const RATE = 100_000;

/** Server CPU per message (µs, and its user-space part) at RATE messages a second. */
function atEqualLoad(mode, loadClient) {
  return withServer(mode, async (port, server) => {
    const [ccmd, cargs] = pinned(1, [loadClient, '--host', '127.0.0.1', '--port', String(port), '--conns', '100', '--size', '64',
      '--duration', String(seconds), '--warmup', '1', '--rate', String(RATE), '--hold']);
    const client = spawn(ccmd, cargs, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let before = null;
    let after = null;
    client.stdout.on('data', (d) => (out += d));
    client.stderr.on('data', (d) => {
      err += d;
      // "ready": the measured phase starts when we answer; "measured": it has ended.
      if (before === null && err.includes('ready')) {
        before = cpuSec(server.pid);
        client.stdin.write('\n');
      }
      if (after === null && err.includes('measured')) {
        after = cpuSec(server.pid);
        client.stdin.end('\n');
      }
    });
    const code = await new Promise((resolve) => client.on('exit', resolve));
    if (code !== 0 || before === null || after === null) throw new Error(`load_epoll failed (${code}): ${err}`);
    const { messages, msgsPerSec } = JSON.parse(out);
    const user = after[0] - before[0];
    const total = user + after[1] - before[1];
    return { usPerMsg: (total / messages) * 1e6, userUsPerMsg: (user / messages) * 1e6, msgsPerSec };
  });
}

const rows = [];
let md = `# Wake mode: uv_poll inside Node's loop vs a blocking epoll_wait loop\n\n\`node bench/wake-mode.js\` on ${machine().cpu}, Node ${process.version}, commit ${machine().commit}; taskset: ${hasTaskset}.\n`;
md += `64-byte ping-pong from a node:net client, ${seconds} s per run, median of ${roundsCount} alternated rounds.\n\n| connections | uv_poll (round trips/s) | blocking (round trips/s) | blocking / uv_poll |\n|---:|---:|---:|---:|\n`;
for (const conns of [1, 100]) {
  const samples = { uv: [], blocking: [] };
  for (let r = 0; r < roundsCount; r++) for (const mode of ['uv', 'blocking']) samples[mode].push(await once(mode, conns));
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const uv = median(samples.uv);
  const blocking = median(samples.blocking);
  rows.push({ conns, uv, blocking, samples });
  md += `| ${conns} | ${Math.round(uv)} | ${Math.round(blocking)} | ${(blocking / uv).toFixed(3)} |\n`;
}

const loadClient = buildLoadClient();
const equal = { uv: [], blocking: [] };
for (let r = 0; r < roundsCount; r++) for (const mode of ['uv', 'blocking']) equal[mode].push(await atEqualLoad(mode, loadClient));
const med = (xs, key) => [...xs].map((x) => x[key]).sort((a, b) => a - b)[xs.length >> 1];
md += `\nAt equal load: the C load client (bench/echo/c/load_epoll.c) sends ${RATE.toLocaleString('en-US')} messages a second over 100 connections x 64 B ` +
  `(--rate), ${seconds} s measured after 1 s of warm-up; server CPU (utime + stime) per message, median of ${roundsCount} alternated rounds.\n\n` +
  '| mode | server CPU µs per message (user space) | msgs/s | blocking / uv_poll |\n|---|---:|---:|---:|\n';
for (const mode of ['uv', 'blocking']) {
  const xs = equal[mode];
  const ratio = mode === 'blocking' ? (med(xs, 'usPerMsg') / med(equal.uv, 'usPerMsg')).toFixed(3) : '';
  md += `| ${mode === 'uv' ? 'uv_poll' : 'blocking'} | ${med(xs, 'usPerMsg').toFixed(2)} (${med(xs, 'userUsPerMsg').toFixed(2)}) | ${Math.round(med(xs, 'msgsPerSec'))} | ${ratio} |\n`;
}
console.log(md);
if (!quick) console.log(`saved ${save('wake-mode', { machine: machine(), rows, equalLoad: { rate: RATE, ...equal } }, md).md}`);
