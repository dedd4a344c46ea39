#!/usr/bin/env node
// Inter-processor interrupts per message: `coloop serve` and `serve --protocol` (pinned to core 0)
// driven by the C load client (core 1), with the function-call (CAL) and rescheduling (RES)
// interrupts each CPU took during the run, from /proc/interrupts, per 1,000 messages, beside the
// server's CPU per message and the client's CPU share. On a VM an IPI costs microseconds.
//
// What it shows: a server that reads many sockets while the client sleeps makes the kernel send
// IPIs (the deferred free of the skbs the client's CPU allocated, net.core.skb_defer_max / 2 at a
// time, and the client's wake-ups); see the note in bench/results or the issue.
//
//   node bench/interrupts.js [--size 64] [--conns 100] [--seconds 4] [--rounds 2] [--dist OTHER/dist]
//
// Linux only; needs taskset. Whole-machine counters: other tenants add to them.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildLoadClient } from './lib/load-client.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const size = Number(opt('--size', '64'));
const conns = Number(opt('--conns', '100'));
const seconds = Number(opt('--seconds', '4'));
const rounds = Number(opt('--rounds', '2'));
for (const [name, v, lo, hi] of [['--size', size, 1, 1 << 20], ['--conns', conns, 1, 20000], ['--seconds', seconds, 1, 60], ['--rounds', rounds, 1, 20]]) {
  if (!Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`${name} takes an integer from ${lo} to ${hi}`);
}
if (spawnSync('taskset', ['-V']).status !== 0) throw new Error('bench/interrupts.js needs taskset (util-linux)');
const dist = path.resolve(opt('--dist', path.join(here, '../dist')));
const client = buildLoadClient();

/** { CAL: [cpu0, cpu1, ...], RES: [...] } */
function irqs() {
  const out = {};
  for (const line of readFileSync('/proc/interrupts', 'utf8').split('\n')) {
    const m = /^\s*(CAL|RES):((?:\s+\d+)+)/.exec(line);
    if (m) out[m[1]] = m[2].trim().split(/\s+/).map(Number);
  }
  return out;
}
const cpuSec = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};

function runClient(port, secs) {
  const r = spawnSync('taskset', ['-c', '1', client, '--host', '127.0.0.1', '--port', String(port), '--conns', String(conns), '--size', String(size), '--duration', String(secs), '--json'], { encoding: 'utf8', timeout: (secs + 60) * 1000 });
  if (r.status !== 0) throw new Error(`load_epoll failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function measure(protocol) {
  const server = spawn('taskset', ['-c', '0', process.execPath, path.join(dist, 'cli.js'), 'serve', '--port', '0', '--backlog', '4096', ...(protocol ? ['--protocol'] : [])], {
    // stderr ignored: the load client's closing resets are logged there.
    stdio: ['ignore', 'pipe', 'ignore'],
    env: { ...process.env, COLOOP_ADDON_PATH: process.env.COLOOP_ADDON_PATH || path.join(here, '../build/Release/coloop.node') },
  });
  try {
    const port = await new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error('the server did not listen')), 20_000);
      server.stdout.on('data', (d) => {
        out += d;
        const m = /listening on [^\s]+:(\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
    });
    runClient(port, 1); // warm-up
    const before = irqs();
    const cpu0 = cpuSec(server.pid);
    const res = runClient(port, seconds);
    const cpu1 = cpuSec(server.pid);
    const after = irqs();
    const per1k = (kind) => after[kind].map((v, i) => ((v - before[kind][i]) * 1000) / res.messages);
    return { messages: res.messages, cal: per1k('CAL'), res: per1k('RES'), serverUsPerMsg: ((cpu1 - cpu0) * 1e6) / res.messages, clientCpuPct: (res.clientCpuSec / seconds) * 100 };
  } finally {
    server.kill('SIGKILL');
  }
}

const f = (xs) => xs.slice(0, 2).map((x) => x.toFixed(1).padStart(5)).join(' ');
console.log(`${conns} conns x ${size} B, ${seconds} s a run; interrupts per 1,000 messages on cpu0 (server) and cpu1 (client)`);
console.log('server                   round  CAL cpu0 cpu1  RES cpu0 cpu1  server us/msg  client CPU %');
for (let round = 0; round < rounds; round++) {
  for (const protocol of [false, true]) {
    const m = await measure(protocol);
    console.log(`${(protocol ? 'coloop serve --protocol' : 'coloop serve').padEnd(24)} ${String(round).padStart(5)}  ${f(m.cal)}      ${f(m.res)}   ${m.serverUsPerMsg.toFixed(2).padStart(12)}  ${m.clientCpuPct.toFixed(0).padStart(12)}`);
  }
}
