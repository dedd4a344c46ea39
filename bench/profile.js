#!/usr/bin/env node
// Where a served echo message's time goes, sampled: `coloop serve` (or `serve --protocol`) driven
// by the C load client (100 connections x 64 B, or --conns x --size) while `perf record -e
// cpu-clock` samples the server; JIT code is named through node's --perf-basic-prof map.
// bench/breakdown.js counts instructions; this weighs them by time, which is not the same: a
// function that touches memory scattered over the heap costs more than its instructions say
// (napi_get_reference_value was 45 instructions a call, and yet the fourth user-space function of
// serve by time), and cheap instructions around a system call cost less.
//
//   node bench/profile.js [--modes serve,proto] [--conns 100] [--size 64] [--rate R] [--warmup 4]
//                         [--seconds 8] [--top 25] [--dist DIR]
//
// --rate R: the client sends R messages a second in all (load_epoll --rate), so that the server is
// sampled at a load below what saturates it, as at bench/echo/suite.js's c100-64-r100k.
//
// --dist runs another build's dist/cli.js (its addon is the build/Release beside that dist/, as
// `bindings` finds it; else this checkout's is not used: copy the whole build).
//
// Prints per mode: the share of the server's samples by part (the kernel, JIT code, node and V8,
// the addon, libc), and the top user-space functions by their own samples. ~15 s per mode; needs
// perf (Debian's linux-perf) allowed to sample (perf_event_paranoid <= 1, or root).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startListening } from './lib/listening-server.mjs';
import { modesOption, option, pinned, requireTools } from './lib/measure-cli.mjs';
import { buildLoadClient } from './lib/load-client.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const modes = modesOption('serve,proto');
const warmup = Number(option('--warmup', '4'));
const seconds = Number(option('--seconds', '8'));
const top = Number(option('--top', '25'));
const conns = Number(option('--conns', '100'));
const size = Number(option('--size', '64'));
const rate = option('--rate', null);
const dist = path.resolve(option('--dist', path.join(here, '../dist')));
if (!(warmup >= 1 && warmup <= 60) || !(seconds >= 1 && seconds <= 60)) throw new RangeError('--warmup and --seconds take 1 to 60');
if (!(Number.isInteger(top) && top >= 1)) throw new RangeError('--top takes a positive integer');
if (!(Number.isInteger(conns) && conns >= 1 && conns <= 60000)) throw new RangeError('--conns takes 1 to 60000');
if (!(Number.isInteger(size) && size >= 1 && size <= 1 << 20)) throw new RangeError('--size takes 1 to 1048576');
if (rate !== null && !(Number(rate) >= 1 && Number(rate) <= 1e8)) throw new RangeError('--rate takes 1 to 1e8 messages a second');
requireTools('profile.js', ['perf'], 'linux-perf');
const loadClient = buildLoadClient();

/** Runs one server under load and perf: the perf.data path and the load run's messages per second. */
async function record(mode, dir) {
  const cli = path.join(dist, 'cli.js');
  const serverArgs = [process.execPath, '--perf-basic-prof', cli, 'serve', '--port', '0', '--backlog', '4096'];
  if (mode === 'proto') serverArgs.push('--protocol');
  const [cmd, argv] = pinned(0, serverArgs);
  const { server, port, exited } = await startListening(cmd, argv);
  // taskset execs node, so the server's pid is the one perf samples (and names the perf map).
  const pid = server.pid;
  try {
    const [lcmd, largv] = pinned(1, [loadClient, '--host', '127.0.0.1', '--port', String(port), '--conns', String(conns), '--size', String(size),
      '--duration', String(warmup + seconds + 1), '--json', ...(rate === null ? [] : ['--rate', rate])]);
    const load = spawn(lcmd, largv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    load.stdout.on('data', (d) => (out += d));
    const loaded = new Promise((resolve) => load.on('exit', resolve));
    await new Promise((resolve) => setTimeout(resolve, warmup * 1000));
    const data = path.join(dir, 'perf.data');
    const r = spawnSync('perf', ['record', '-e', 'cpu-clock', '-F', '4999', '-p', String(pid), '-o', data, '--', 'sleep', String(seconds)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`perf record failed (perf_event_paranoid?): ${r.stderr.slice(-300)}`);
    if ((await loaded) !== 0) throw new Error(`load_epoll failed: ${out}`);
    return { data, pid, msgsPerSec: JSON.parse(out).msgsPerSec };
  } finally {
    if (server.exitCode === null) server.kill('SIGINT');
    await exited;
  }
}

/** `perf report` lines "  12.34%  dso  sym" as [percent, dso, sym]; sym is '' when sorted by dso alone. */
function report(data, sort) {
  const r = spawnSync('perf', ['report', '-i', data, '--no-children', '--sort', sort, '--stdio', '-g', 'none'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`perf report failed: ${r.stderr.slice(-300)}`);
  const rows = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^\s+([\d.]+)%\s+(\S.*?)(?:\s{2,}\[[.k]\]\s+(.*))?$/.exec(line);
    if (m) rows.push([Number(m[1]), m[2].trim(), (m[3] ?? '').trim()]);
  }
  return rows;
}

/** The part of the process a DSO is. */
function part(dso) {
  if (dso.startsWith('[kernel')) return 'the kernel';
  if (dso.startsWith('[JIT]')) return 'JS (JIT code)';
  if (dso === 'node') return 'node, V8 (builtins, runtime, Node-API)';
  if (dso.includes('coloop')) return 'the addon (coloop.node)';
  if (dso.startsWith('libc')) return 'libc';
  return 'other';
}

const dir = mkdtempSync(path.join(tmpdir(), 'coloop-profile-'));
try {
  for (const mode of modes) {
    const { data, pid, msgsPerSec } = await record(mode, dir);
    const byPart = new Map();
    for (const [pct, dso] of report(data, 'dso')) byPart.set(part(dso), (byPart.get(part(dso)) ?? 0) + pct);
    const user = [...byPart].filter(([p]) => p !== 'the kernel').reduce((sum, [, pct]) => sum + pct, 0);
    console.log(`\n${mode === 'proto' ? 'serve --protocol' : 'serve'}, ${conns} conns x ${size} B${rate === null ? '' : ` at ${rate} msgs/s`}: ${Math.round(msgsPerSec).toLocaleString('en-US')} msgs/s; ${seconds} s of cpu-clock samples after ${warmup} s of load`);
    console.log('\n  by part, % of the server\'s samples');
    for (const [p, pct] of [...byPart].sort((a, b) => b[1] - a[1])) console.log(`  ${pct.toFixed(2).padStart(6)}  ${p}`);
    console.log(`\n  top ${top} user-space functions: % of the server's samples (% of its user-space samples)`);
    const rows = report(data, 'dso,sym').filter(([, dso]) => part(dso) !== 'the kernel').slice(0, top);
    for (const [pct, dso, sym] of rows) {
      const where = dso.startsWith('[JIT]') ? '' : `[${dso}] `;
      console.log(`  ${pct.toFixed(2).padStart(6)} (${((100 * pct) / user).toFixed(1).padStart(4)})  ${where}${sym.replace(/file:\/\/\S*\/dist\//, '')}`);
    }
    rmSync(`/tmp/perf-${pid}.map`, { force: true });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
