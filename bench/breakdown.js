#!/usr/bin/env node
// Where a served echo message's user-space instructions go, by function: `coloop serve` (or
// `serve --protocol`) under callgrind, driven by the C load client (100 connections x 64 B, or
// --size B).
// One load run warms the server up and is then counted alone on the same connections
// (callgrind_control --zero and --dump around its measured phase), so start-up, compilation of the
// warm-up and connection set-up and teardown stay out of the window; JIT code is named
// through node's --perf-basic-prof map. bench/instructions.js gives the totals; this says where
// they go (a call into the addon, the poll, the JS functions, V8's builtins).
//
//   node bench/breakdown.js [--modes serve,proto] [--size 64] [--rate R] [--warmup 20] [--seconds 9]
//                           [--top 30]
//
// --rate R: the client sends R messages a second in all (load_epoll --rate), so that the server
// wakes for a few messages at a time, as below saturation, and what each wake costs (Node's loop
// turn, the callback into JS, the poll) shows per message; JsPoller::Wake's calls per message are
// then the wakes per message. Under callgrind the server runs ~8x slower than natively (it
// saturates near 40,000 messages a second): 12,000 is about what 100,000 is outside it, and at
// 3,000 nearly every message has a wake of its own.
//
// Prints per message: instructions by part of the process, the top functions by their own
// instructions, and, for the addon's entry points and Node-API's, calls per message and
// instructions per call including what they call. ~1 minute per mode; needs valgrind.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startListening } from './lib/listening-server.mjs';
import { modesOption, option, pinned, requireTools } from './lib/measure-cli.mjs';
import { buildLoadClient } from './lib/load-client.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const modes = modesOption('serve');
const warmup = Number(option('--warmup', '20'));
const seconds = Number(option('--seconds', '9'));
const top = Number(option('--top', '30'));
const size = Number(option('--size', '64'));
const rate = option('--rate');
if (rate !== undefined && !(Number(rate) > 0 && Number(rate) <= 1e6)) throw new RangeError(`--rate takes messages a second above 0 and at most 1e6, not ${rate}`);
if (!Number.isInteger(size) || size < 1 || size > 1 << 20) throw new RangeError(`--size takes 1 to 1048576 bytes, not ${option('--size')}`);
if (!(warmup >= 1 && warmup <= 120) || !(seconds >= 1 && seconds <= 120)) throw new RangeError('--warmup and --seconds take 1 to 120');
requireTools('breakdown.js', ['valgrind', 'callgrind_control'], 'valgrind');
const loadClient = buildLoadClient();

/** Waits until the load client prints `line` on stderr (see its --hold). */
function saying(load, line) {
  return new Promise((resolve, reject) => {
    let err = '';
    const on = (d) => {
      err += d;
      if (err.split('\n').includes(line)) {
        load.stderr.off('data', on);
        resolve();
      }
    };
    load.stderr.on('data', on);
    load.once('exit', (code) => reject(new Error(`load_epoll exited (${code}) before "${line}": ${err}`)));
  });
}

/** Runs one server under callgrind: the window's dump file, its messages, and the perf map. */
async function measure(mode, dir) {
  const cli = path.join(here, '../dist/cli.js');
  const serverArgs = ['valgrind', '--tool=callgrind', `--callgrind-out-file=${dir}/cg.%p`, process.execPath,
    '--random-seed=42', '--hash-seed=42', '--no-concurrent-recompilation', '--perf-basic-prof', cli, 'serve', '--port', '0'];
  if (mode === 'proto') serverArgs.push('--protocol');
  const [cmd, argv] = pinned(0, serverArgs);
  const { server, port, exited } = await startListening(cmd, argv, { timeoutMs: 120_000 });
  // valgrind runs node itself (no exec), so the server's pid is the one callgrind and perf use.
  const pid = server.pid;
  try {
    const control = (flag) => {
      const r = spawnSync('callgrind_control', [flag, String(pid)], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`callgrind_control ${flag} failed: ${r.stderr || r.stdout}`);
    };
    // One load run: its connections warm the server up and are then measured, so no connection
    // is set up or closed inside the window (new connections also brought TurboFan recompiles
    // into it). The client holds before and after its measured phase (--hold) for the counter
    // to be zeroed and dumped exactly around the messages it counts.
    const [lcmd, largv] = pinned(1, [loadClient, '--host', '127.0.0.1', '--port', String(port), '--conns', '100', '--size', String(size),
      '--warmup', String(warmup), '--duration', String(seconds), '--hold', '--json', ...(rate === undefined ? [] : ['--rate', rate])]);
    const load = spawn(lcmd, largv, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    load.stdout.on('data', (d) => (out += d));
    const loaded = new Promise((resolve) => load.on('exit', resolve));
    try {
      await saying(load, 'ready');
      control('--zero');
      load.stdin.write('go\n');
      await saying(load, 'measured');
      control('--dump=window');
      load.stdin.end('go\n');
      if ((await loaded) !== 0) throw new Error(`load_epoll failed: ${out}`);
    } finally {
      if (load.exitCode === null) load.kill('SIGKILL');
    }
    const messages = JSON.parse(out).messages;
    const dump = readdirSync(dir).map((f) => path.join(dir, f)).find((f) => /cg\.\d+\.1$/.test(f));
    if (!dump) throw new Error(`no callgrind dump in ${dir}`);
    const perfMap = `/tmp/perf-${pid}.map`;
    const map = existsSync(perfMap) ? readFileSync(perfMap, 'utf8') : '';
    return { costs: readFileSync(dump, 'utf8'), messages, map, perfMap };
  } finally {
    if (server.exitCode === null) server.kill('SIGINT');
    await exited;
  }
}

/**
 * The callgrind format, as much as this needs (events: Ir alone): self cost per (object,
 * function), and per callee its calls and the inclusive cost of those calls. Names are
 * compressed ("(12) name" once, "(12)" after).
 */
function parse(text) {
  const names = { ob: new Map(), fn: new Map() };
  const name = (kind, v) => {
    const m = /^\((\d+)\)(?:\s+(.*))?$/.exec(v);
    if (!m) return v;
    if (m[2] !== undefined) names[kind].set(m[1], m[2]);
    return names[kind].get(m[1]) ?? `(${m[1]})`;
  };
  const self = new Map();
  const called = new Map(); // callee -> [calls, inclusive]
  let ob = '';
  let fn = '';
  let cob = null;
  let cfn = '';
  let pendingCalls = -1;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const c = line[0];
    if ((c >= '0' && c <= '9') || c === '+' || c === '-' || c === '*') {
      const cost = Number(line.split(' ')[1] ?? 0);
      if (pendingCalls >= 0) {
        const key = `${cob ?? ob}\t${cfn}`;
        const e = called.get(key) ?? [0, 0];
        e[0] += pendingCalls;
        e[1] += cost;
        called.set(key, e);
        pendingCalls = -1;
        cob = null;
      } else {
        const key = `${ob}\t${fn}`;
        self.set(key, (self.get(key) ?? 0) + cost);
      }
      continue;
    }
    const eq = line.indexOf('=');
    const k = line.slice(0, eq);
    const v = line.slice(eq + 1);
    if (k === 'ob') ob = name('ob', v);
    else if (k === 'fn') fn = name('fn', v);
    else if (k === 'cob') cob = name('ob', v);
    else if (k === 'cfn') cfn = name('fn', v);
    else if (k === 'calls') pendingCalls = Number(v.split(' ')[0]);
  }
  return { self, called };
}

/** JIT addresses (callgrind: object ???, function 0x...) named from the perf map; the last entry wins. */
function namer(map) {
  const entries = map.split('\n').filter(Boolean).map((l) => {
    const [a, s, ...n] = l.split(' ');
    return [parseInt(a, 16), parseInt(s, 16), n.join(' ')];
  });
  return (addr) => {
    let found = null;
    for (const [a, s, n] of entries) if (addr >= a && addr < a + s) found = n;
    return found === null ? `JIT 0x${addr.toString(16)}` : found.replace(/file:\/\/\S*\/dist\//, '');
  };
}

function group(ob, fn) {
  if (ob === '???' || ob === 'JIT') return 'JS (JIT code)';
  const base = path.basename(ob);
  if (base === 'coloop.node') return 'the addon (coloop.node)';
  if (base !== 'node') return base.startsWith('libc') ? 'libc' : base;
  if (fn.startsWith('Builtins_')) return 'V8 builtins';
  if (fn.startsWith('napi_') || fn.includes('v8impl')) return 'Node-API';
  if (/compiler::|Compil|Turbofan|Pipeline/.test(fn)) return 'V8 compiler';
  if (/Heap|Mark|Scaveng|Sweep|Evacuat|Remembered|SlotSet|Worklist/.test(fn)) return 'V8 GC';
  if (fn.startsWith('v8::')) return 'V8 C++ (API, runtime)';
  return 'node, libuv';
}

const ENTRY_POINTS = /JsPoller::Wake|FastRead|FastWrite|FastReadBuffer|FastWriteBuffer|JsPoller::Wait|^Builtins_CallApiCallback$|FunctionCallbackWrapper::Invoke|^napi_get_typedarray_info$|^napi_get_arraybuffer_info$|^napi_get_cb_info$|^napi_get_value_double$|^napi_create_double$|^napi_get_reference_value$|^napi_unwrap$/;

for (const mode of modes) {
  const dir = mkdtempSync(path.join(tmpdir(), 'coloop-breakdown-'));
  try {
    const { costs, messages, map, perfMap } = await measure(mode, dir);
    rmSync(perfMap, { force: true });
    const jsName = namer(map);
    const label = (key) => {
      const [ob, fn] = key.split('\t');
      const f = fn.replace(/'\d+$/, '');
      return ob === '???' && f.startsWith('0x') ? ['JIT', jsName(parseInt(f, 16))] : [ob, f];
    };
    const { self, called } = parse(costs);
    const total = [...self.values()].reduce((a, b) => a + b, 0);
    const per = (x) => (x / messages).toFixed(1).padStart(8);
    console.log(`\n${mode === 'proto' ? 'serve --protocol' : 'serve'}: ${Math.round(total / messages).toLocaleString('en')} instructions per message (${size} B messages${rate === undefined ? '' : ` at ${rate} a second`}, ${messages.toLocaleString('en')} messages in a ${seconds} s window after ${warmup} s of warm-up)`);
    const groups = new Map();
    const byFn = new Map();
    for (const [key, v] of self) {
      const [ob, fn] = label(key);
      const g = group(ob, fn);
      groups.set(g, (groups.get(g) ?? 0) + v);
      const f = `${ob === 'JIT' ? '' : `[${path.basename(ob)}] `}${fn}`;
      byFn.set(f, (byFn.get(f) ?? 0) + v);
    }
    // A window may catch V8 optimizing code anew (each load run opens new connections, whose
    // first messages can deoptimize what the warm-up compiled): work of the window, not of a message.
    const aside = (groups.get('V8 compiler') ?? 0) + (groups.get('V8 GC') ?? 0);
    console.log(`  ${Math.round((total - aside) / messages).toLocaleString('en')} per message without V8's compiler and GC (${Math.round(aside / messages).toLocaleString('en')} of the window's)`);
    console.log('\n  by part, per message');
    for (const [g, v] of [...groups].sort((a, b) => b[1] - a[1])) console.log(`${per(v)}  ${g}`);
    console.log(`\n  top ${top} functions by their own instructions, per message`);
    for (const [f, v] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${per(v)}  ${f.slice(0, 120)}`);
    console.log('\n  entry points: calls per message, instructions per call including callees');
    const entries = [];
    for (const [key, [n, incl]] of called) {
      const [ob, fn] = label(key);
      if (ENTRY_POINTS.test(fn) && n > 0) entries.push([fn, ob, n, incl]);
    }
    const merged = new Map();
    for (const [fn, ob, n, incl] of entries) {
      const k = `[${path.basename(ob)}] ${fn}`;
      const e = merged.get(k) ?? [0, 0];
      e[0] += n;
      e[1] += incl;
      merged.set(k, e);
    }
    for (const [k, [n, incl]] of [...merged].sort((a, b) => b[1][1] - a[1][1])) {
      if (n / messages < 0.005) continue;
      console.log(`${(n / messages).toFixed(3).padStart(8)} calls  ${Math.round(incl / n).toLocaleString('en').padStart(7)} per call  ${k.slice(0, 110)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
