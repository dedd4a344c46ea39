#!/usr/bin/env node
// Where a coloop server's memory goes with many connections open: `coloop serve` (or
// `serve --protocol`) driven by the C load client at N connections x 64 B, its RssAnon sampled
// every 100 ms, V8's spaces read from inside it once the load runs, and a heap snapshot taken
// mid-run and summed by constructor (the largest kinds, with counts and bytes per connection).
//
//   node bench/memory.js [--conns 10000] [--seconds 6] [--protocol] [--dist OTHER/dist] [--top 16]
//
// Figures from one run: V8 sizes its young generation by how much survives, so the peak moves a
// few MiB from run to run (see README, --node-flags). Linux only (/proc).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildLoadClient } from './lib/load-client.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const conns = Number(opt('--conns', '10000'));
const seconds = Number(opt('--seconds', '6'));
const top = Number(opt('--top', '16'));
if (!Number.isInteger(conns) || conns < 1 || conns > 60000) throw new RangeError(`--conns takes 1 to 60000, not ${opt('--conns')}`);
if (!(seconds >= 2 && seconds <= 120)) throw new RangeError(`--seconds takes 2 to 120, not ${opt('--seconds')}`);
const protocol = args.includes('--protocol');
const dist = path.resolve(opt('--dist', path.join(here, '../dist')));

const work = mkdtempSync(path.join(tmpdir(), 'coloop-memory-'));
// Preloaded into the server: prints V8's spaces (physical sizes) on SIGUSR1.
const probe = path.join(work, 'spaces.cjs');
writeFileSync(
  probe,
  `process.on('SIGUSR1', () => {
     const v8 = require('node:v8');
     const spaces = {};
     for (const s of v8.getHeapSpaceStatistics()) spaces[s.space_name] = s.physical_space_size;
     process.stderr.write('SPACES ' + JSON.stringify(spaces) + '\\n');
   });\n`,
);

const anonKiB = (pid) => Number(/RssAnon:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const server = spawn(
  process.execPath,
  ['--heapsnapshot-signal=SIGUSR2', '--diagnostic-dir', work, '-r', probe, path.join(dist, 'cli.js'), 'serve', '--port', '0', '--backlog', '4096', ...(protocol ? ['--protocol'] : [])],
  // Another build of dist/ runs on this checkout's addon, as in bench/instructions.js.
  { stdio: ['ignore', 'pipe', 'pipe'], cwd: work, env: { ...process.env, COLOOP_ADDON_PATH: process.env.COLOOP_ADDON_PATH || path.join(here, '../build/Release/coloop.node') } },
);
let out = '';
let err = '';
server.stdout.on('data', (d) => (out += d));
server.stderr.on('data', (d) => (err += d));
try {
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not listen: ${err}`)), 20_000);
    server.stdout.on('data', () => {
      const m = /listening on [^\s]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  const idle = anonKiB(server.pid);
  const load = spawn(buildLoadClient(), ['--host', '127.0.0.1', '--port', String(port), '--conns', String(conns), '--size', '64', '--duration', String(seconds), '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let loadOut = '';
  load.stdout.on('data', (d) => (loadOut += d));
  const loadDone = new Promise((resolve) => load.on('close', resolve));
  let peak = idle;
  const deadline = Date.now() + seconds * 1000 * 0.9;
  while (Date.now() < deadline) {
    peak = Math.max(peak, anonKiB(server.pid));
    await sleep(100);
  }
  server.kill('SIGUSR1');
  await sleep(200);
  server.kill('SIGUSR2');
  const code = await loadDone;
  if (code !== 0) throw new Error(`load_epoll exited ${code}`);
  let snapshot;
  for (let i = 0; i < 300 && !snapshot; i++) {
    await sleep(100);
    const name = readdirSync(work).find((f) => f.endsWith('.heapsnapshot'));
    // Written once the server's stderr says so (Node prints nothing): wait for a stable size.
    if (name && readFileSync(path.join(work, name)).length > 0) {
      try {
        snapshot = JSON.parse(readFileSync(path.join(work, name), 'utf8'));
      } catch {
        // still being written
      }
    }
  }
  if (!snapshot) throw new Error('no heap snapshot was written');
  const spaces = JSON.parse(/SPACES (.*)/.exec(err)?.[1] ?? '{}');
  const messages = JSON.parse(loadOut).messages;

  const meta = snapshot.snapshot.meta;
  const F = meta.node_fields.length;
  const [ti, ni, si] = ['type', 'name', 'self_size'].map((f) => meta.node_fields.indexOf(f));
  const types = meta.node_types[0];
  const kinds = new Map();
  let total = 0;
  for (let i = 0; i < snapshot.nodes.length; i += F) {
    const type = types[snapshot.nodes[i + ti]];
    let name = snapshot.strings[snapshot.nodes[i + ni]];
    if (/string/.test(type)) name = '(strings)';
    else if (type === 'code') name = '(code)';
    const key = `${type} ${name.slice(0, 48)}`;
    const size = snapshot.nodes[i + si];
    total += size;
    const k = kinds.get(key) ?? { count: 0, bytes: 0 };
    k.count++;
    k.bytes += size;
    kinds.set(key, k);
  }
  const MiB = (b) => (b / 1048576).toFixed(1);
  console.log(`coloop serve${protocol ? ' --protocol' : ''} (${dist}), ${conns.toLocaleString('en')} connections x 64 B, ${messages.toLocaleString('en')} messages`);
  console.log(`RssAnon: ${MiB(idle * 1024)} MiB idle, ${MiB(peak * 1024)} MiB peak under load`);
  console.log(`V8 spaces (physical): new ${MiB(spaces.new_space ?? 0)}, old ${MiB(spaces.old_space ?? 0)}, code ${MiB(spaces.code_space ?? 0)}, large objects ${MiB(spaces.large_object_space ?? 0)} MiB`);
  console.log(`live heap (snapshot): ${MiB(total)} MiB; largest kinds:`);
  console.log('      KiB    count  B/conn  kind');
  for (const [key, { count, bytes }] of [...kinds].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top)) {
    console.log(`${(bytes / 1024).toFixed(0).padStart(9)} ${String(count).padStart(8)} ${(bytes / conns).toFixed(0).padStart(7)}  ${key}`);
  }
} finally {
  if (server.exitCode === null) server.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}
