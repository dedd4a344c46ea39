#!/usr/bin/env node
// coloop echo benchmark suite: echo servers driven by one load client in a separate process.
//
//   node bench/echo/suite.js              full matrix (~17 min on 2 cores)
//   node bench/echo/suite.js --headline   headline subset (~2.3 min: 3 rounds x 1.7 s = 5.1 s per cell)
//   node bench/echo/suite.js --smoke      1 round x 1 s x 1 scenario x 2 servers (tests)
//
// Options: --rounds N  --duration S (per round)  --warmup S  --servers a,b  --scenarios a,b
//          --client c|cli  --cli dist|stub  --out DIR  --no-progress  --list
//          --node-flags F   flags for every Node server alike, coloop's and node:net's (one
//                           argument: --node-flags=--max-semi-space-size=1 or a quoted list)
//          --baseline DIR   also runs coloop's two native servers from another build of dist/
//                           (e.g. `npx tsc -p tsconfig.build.json --outDir /tmp/base` at an older
//                           commit), as native-base and native-protocol-base: a change A/B'd in
//                           one run. They run on that build's own addon when DIR/../build/Release
//                           holds one (copy the whole build: `cp -r dist build package.json
//                           /tmp/base/`), else on this checkout's (the driver alone is compared)
//
// Fairness: the server is pinned to core 0 and the client to core 1 (taskset, when it exists);
// servers are alternated round by round (the order rotates each round); every server gets the same
// client, warm-up and duration; ratios are taken between medians of the same run. The C server
// (bench/echo/c/echo_epoll.c, built here with cc -O2) is the physical-limit reference. As fast as
// they go, servers near the reference are limited by the client's core as much as by their own
// (the C client needs about the server's CPU per message): the paced scenario (c100-64-r100k, the
// C client's --rate) sends every server the same load and compares the CPU each spends on it.
import { spawn, spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { addonFor } from './builds.js';
import { renderMarkdown, renderSvg, summarize } from './report.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const buildDir = path.join(here, 'build');
const HOST = '127.0.0.1';
const FD_LIMIT = 20000;
const PY = '/usr/bin/python3';

// ---------------------------------------------------------------------------------------------
// Options

function parseArgs(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    // --node-flags=... keeps its value in one argument (the value itself starts with --).
    if (a.startsWith('--node-flags=')) {
      o['node-flags'] = a.slice('--node-flags='.length);
      continue;
    }
    const key = a.slice(2);
    if (['headline', 'smoke', 'no-progress', 'list', 'help'].includes(key)) o[key] = true;
    else if (i + 1 < argv.length) o[key] = argv[++i];
    else throw new Error(`${a} needs a value`);
  }
  return o;
}

const SCENARIOS = [
  { id: 'c100-64', label: '100 conns × 64 B', conns: 100, size: 64, pipeline: 1 },
  { id: 'c100-1k', label: '100 conns × 1 KiB', conns: 100, size: 1024, pipeline: 1 },
  { id: 'c100-16k', label: '100 conns × 16 KiB', conns: 100, size: 16384, pipeline: 1 },
  { id: 'c10k-64', label: '10,000 conns × 64 B', conns: 10000, size: 64, pipeline: 1 },
  { id: 'c100-64-p8', label: '100 conns × 64 B, 8 in flight', conns: 100, size: 64, pipeline: 8 },
  // Equal load (the C client's --rate): every server answers the same 100,000 messages a second,
  // so CPU per message and latency compare at the same throughput, wherever each would saturate.
  { id: 'c100-64-r100k', label: '100 conns × 64 B at 100k msgs/s', conns: 100, size: 64, pipeline: 1, rate: 100_000 },
  // Light load, opt-in (--scenarios): at 10,000 a second nearly every message wakes its server on
  // its own, so what a wake costs (a turn of Node's loop, the callback, the poll) is most of it.
  { id: 'c100-64-r10k', label: '100 conns × 64 B at 10k msgs/s', conns: 100, size: 64, pipeline: 1, rate: 10_000, optIn: true },
];

/** `cmd` with `flags` after the node executable, wherever it comes in it (after an `env X=Y`). */
function withNodeFlags(cmd, flags) {
  const i = cmd.indexOf(process.execPath);
  return flags.length === 0 || i < 0 ? cmd : [...cmd.slice(0, i + 1), ...flags, ...cmd.slice(i + 1)];
}

function serverDefs(cli, baseline, nodeFlags = []) {
  return serverCommands(cli, baseline).map((def) => ({ ...def, cmd: withNodeFlags(def.cmd, nodeFlags) }));
}

function serverCommands(cli, baseline) {
  const node = process.execPath;
  const base = baseline
    ? ['env', `COLOOP_ADDON_PATH=${addonFor(baseline, path.join(root, 'build/Release/coloop.node'))}`, node, path.join(path.resolve(baseline), 'cli.js')]
    : null;
  const baseDefs = base
    ? [
        { id: 'native-base', label: `coloop native (serve), ${baseline}`, cmd: [...base, 'serve', '--host', HOST, '--port', '0', '--backend', 'native', '--backlog', '4096'] },
        { id: 'native-protocol-base', label: `coloop native (Protocol), ${baseline}`, cmd: [...base, 'serve', '--host', HOST, '--port', '0', '--backend', 'native', '--protocol', '--backlog', '4096'] },
      ]
    : [];
  return [
    ...baseDefs,
    { id: 'c', label: 'C epoll (reference)', cmd: [path.join(buildDir, 'echo_epoll'), '--host', HOST, '--port', '0'] },
    { id: 'native', label: 'coloop native (serve)', cmd: [...cli.cmd, 'serve', '--host', HOST, '--port', '0', '--backend', 'native', '--backlog', '4096'] },
    { id: 'native-protocol', label: 'coloop native (Protocol)', cmd: [...cli.cmd, 'serve', '--host', HOST, '--port', '0', '--backend', 'native', '--protocol', '--backlog', '4096'] },
    { id: 'js', label: 'coloop js (pure-JS selector)', cmd: [...cli.cmd, 'serve', '--host', HOST, '--port', '0', '--backend', 'js', '--backlog', '4096'] },
    { id: 'node-pipe', label: 'node:net pipe', cmd: [node, path.join(here, 'node_echo.js'), '--host', HOST, '--port', '0', '--mode', 'pipe'] },
    { id: 'node-data', label: "node:net on('data')", cmd: [node, path.join(here, 'node_echo.js'), '--host', HOST, '--port', '0', '--mode', 'data'] },
    // Opt-in (--servers ...,c-uring): io_uring's cost on the same echo, for the question whether
    // coloop should have an io_uring backend, and which kind. Need liburing (Debian: liburing-dev).
    { id: 'c-uring', label: 'C io_uring (multishot recv)', cmd: [path.join(buildDir, 'echo_uring'), '--host', HOST, '--port', '0'], uring: 'echo_uring' },
    // The same, with each send made by send(2) at once (the ring only for what the kernel does not
    // take): what an io_uring backend would keep of the saving with coloop's write(), which says
    // at once what the kernel took.
    { id: 'c-uring-sync', label: 'C io_uring (multishot recv, send(2))', cmd: [path.join(buildDir, 'echo_uring'), '--host', HOST, '--port', '0', '--send', 'sync'], uring: 'echo_uring' },
    // The same on a COOP_TASKRUN ring (echo_uring picks DEFER_TASKRUN where it can): whether the
    // simpler setup costs more (its ring fd wakes an epoll set, and a cancelled receive lets go of
    // its socket at once; DEFER_TASKRUN needs an eventfd and an enter for that: uring_probe.c).
    // It does: 1.17-1.20x epoll's server CPU per message (bench/results/uring-setup).
    { id: 'c-uring-sync-coop', label: 'C io_uring (multishot recv, send(2), COOP_TASKRUN)', cmd: [path.join(buildDir, 'echo_uring'), '--host', HOST, '--port', '0', '--send', 'sync', '--setup', 'coop'], uring: 'echo_uring' },
    // The same woken as a runtime inside Node's loop would be: an eventfd registered with the ring,
    // in an epoll set the loop blocks on (libuv's part), then a submit-and-reap that does not wait.
    { id: 'c-uring-sync-epoll', label: 'C io_uring (multishot recv, send(2), woken through epoll)', cmd: [path.join(buildDir, 'echo_uring'), '--host', HOST, '--port', '0', '--send', 'sync', '--wait', 'epoll'], uring: 'echo_uring' },
    // epoll as in the reference, each batch's reads made by one io_uring_enter: what coloop's
    // poll would save by batching its reads ahead, without multishot receive.
    { id: 'c-uring-batch', label: 'C epoll + one io_uring_enter of recvs per batch', cmd: [path.join(buildDir, 'echo_uring_batch'), '--host', HOST, '--port', '0'], uring: 'echo_uring_batch' },
    { id: 'asyncio', label: 'Python asyncio', cmd: [PY, path.join(here, 'python/asyncio_echo.py'), '--host', HOST, '--port', '0'], python: true },
    { id: 'uvloop', label: 'Python uvloop', cmd: [PY, path.join(here, 'python/asyncio_echo.py'), '--host', HOST, '--port', '0', '--uvloop'], python: true, uvloop: true },
  ];
}

const HEADLINE = { servers: ['c', 'native', 'native-protocol', 'js', 'node-pipe'], scenarios: ['c100-64', 'c10k-64', 'c100-64-p8'], rounds: 3, duration: 1.7, warmup: 0.4 };
const FULL = { servers: SERVERS_ALL(), scenarios: SCENARIOS.filter((s) => !s.optIn).map((s) => s.id), rounds: 3, duration: 5, warmup: 1 };
const SMOKE = { servers: ['c', 'node-pipe'], scenarios: ['c100-64'], rounds: 1, duration: 1, warmup: 0.2 };
function SERVERS_ALL() {
  return ['c', 'native', 'native-protocol', 'js', 'node-pipe', 'node-data', 'asyncio', 'uvloop'];
}

// ---------------------------------------------------------------------------------------------
// Child processes: every one is tracked and killed (with its process group) on any exit path.

const children = new Set();

function killChild(child, signal = 'SIGKILL') {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal); // its own process group (spawned detached)
  } catch {
    try {
      child.kill(signal);
    } catch {}
  }
}

function killAll() {
  for (const c of children) killChild(c);
  children.clear();
}

process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    killAll();
    process.stderr.write(`\nbench: ${sig}, children stopped\n`);
    process.exit(130);
  });
}
process.on('uncaughtException', (err) => {
  killAll();
  console.error(err);
  process.exit(1);
});

const hasTaskset = spawnSync('sh', ['-c', 'command -v taskset'], { stdio: 'ignore' }).status === 0;
const cpus = os.cpus().length;
const SERVER_CORE = 0;
const CLIENT_CORE = cpus > 1 ? 1 : 0;

/** `sh -c 'ulimit -n 20000; exec taskset -c CORE cmd...'`: same pid all the way down. */
function wrap(cmd, core) {
  const q = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;
  const pin = hasTaskset ? `taskset -c ${core} ` : '';
  return ['sh', ['-c', `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n $(ulimit -Hn); exec ${pin}${cmd.map(q).join(' ')}`]];
}

function track(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

/** Starts a server and resolves once it printed "listening on HOST:PORT". */
function startServer(def) {
  const [file, args] = wrap(def.cmd, SERVER_CORE);
  const child = track(spawn(file, args, { cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => {
    if (err.length < 4096) err += d;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${def.id}: no "listening on" line within 20 s`)), 20_000);
    const fail = (e) => {
      clearTimeout(timer);
      killChild(child);
      e.message += err ? `\n  stderr: ${err.trim().split('\n').slice(-5).join('\n  ')}` : '';
      reject(e);
    };
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (\S+):(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout.removeAllListeners('data');
        child.stdout.resume();
        resolve({ child, port: Number(m[2]), banner: out.split('\n')[0].trim(), stderr: () => err });
      }
    });
    child.on('exit', (code, sig) => fail(new Error(`${def.id}: exited (${code ?? sig}) before listening`)));
    child.on('error', fail);
  });
}

/** SIGTERM, then SIGKILL after 3 s. Resolves with the exit code (or signal name). */
function stopServer(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode ?? child.signalCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => killChild(child), 3000);
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      resolve(code ?? sig);
    });
    try {
      process.kill(child.pid, 'SIGTERM');
    } catch {}
  });
}

/** Runs the load client once; resolves with its JSON. Killed if it overruns. */
function runClient(client, port, sc, duration, warmup) {
  const cmd = [...client.cmd, 'load', '--host', HOST, '--port', String(port), '--conns', String(sc.conns), '--size', String(sc.size),
    '--duration', String(duration), '--warmup', String(warmup), '--pipeline', String(sc.pipeline), '--json'];
  if (client.kind === 'c') cmd.splice(client.cmd.length, 1); // load_epoll takes no subcommand
  if (sc.rate) cmd.push('--rate', String(sc.rate)); // both clients pace with --rate
  const [file, args] = wrap(cmd, CLIENT_CORE);
  const child = track(spawn(file, args, { cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => {
    if (err.length < 4096) err += d;
  });
  const limit = (duration + warmup + 40) * 1000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      killChild(child);
      reject(new Error(`load client ran past ${limit / 1000} s`));
    }, limit);
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').reverse().find((l) => l.startsWith('{'));
      if (!line) return reject(new Error(`load client exited (${code ?? sig}) without JSON${err ? `: ${err.trim().split('\n').slice(-3).join(' | ')}` : ''}`));
      try {
        resolve(JSON.parse(line));
      } catch (e) {
        reject(new Error(`load client printed bad JSON: ${line.slice(0, 200)}`));
      }
    });
    child.on('error', reject);
  });
}

// /proc readings of the server process.
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
/** [user + kernel, user] CPU seconds of a process so far, or null once it is gone. */
function procCpuSec(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from #3 (state) on
    const user = Number(fields[11]) / CLK_TCK; // #14 utime
    return [user + Number(fields[12]) / CLK_TCK, user]; // #15 stime
  } catch {
    return null;
  }
}
function procMemKiB(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const get = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
    return { hwm: get('VmHWM'), rss: get('VmRSS'), anon: get('RssAnon') };
  } catch {
    return { hwm: null, rss: null, anon: null };
  }
}

// ---------------------------------------------------------------------------------------------
// Build and detection

/** When `src` or a header the reference servers share last changed. */
function sourceTime(src) {
  const headers = ['echo_common.h', 'echo_epoll_conn.h'].map((h) => statSync(path.join(here, 'c', h)).mtimeMs);
  return Math.max(statSync(src).mtimeMs, ...headers);
}

function buildC() {
  mkdirSync(buildDir, { recursive: true });
  const cc = process.env.CC || 'cc';
  for (const name of ['echo_epoll', 'load_epoll']) {
    const src = path.join(here, 'c', `${name}.c`);
    const bin = path.join(buildDir, name);
    if (existsSync(bin) && statSync(bin).mtimeMs >= sourceTime(src)) continue;
    const r = spawnSync(cc, ['-O2', '-Wall', '-o', bin, src], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`building ${name} failed (${cc} -O2): ${r.stderr || r.error}`);
  }
}

/** Builds an io_uring reference server (`name`.c); null when built, else why it could not be. */
function buildUring(name) {
  const src = path.join(here, 'c', `${name}.c`);
  const bin = path.join(buildDir, name);
  if (existsSync(bin) && statSync(bin).mtimeMs >= sourceTime(src)) return null;
  const r = spawnSync(process.env.CC || 'cc', ['-O2', '-Wall', '-o', bin, src, '-luring'], { encoding: 'utf8' });
  return r.status === 0 ? null : `it did not build (liburing missing? ${String(r.stderr || r.error).split('\n')[0]})`;
}

function detectCli(choice) {
  const dist = path.join(root, 'dist', 'cli.js');
  if (choice !== 'stub' && existsSync(dist)) return { kind: 'dist', cmd: [process.execPath, dist], label: 'node dist/cli.js' };
  if (choice === 'dist') throw new Error('dist/cli.js not found: run npm run build');
  return { kind: 'stub', cmd: [process.execPath, path.join(here, 'stub-cli.js')], label: 'node bench/echo/stub-cli.js (stand-in for the CLI)' };
}

function detectPython() {
  const py = spawnSync(PY, ['-c', 'import asyncio'], { stdio: 'ignore' }).status === 0;
  const uv = py && spawnSync(PY, ['-c', 'import uvloop'], { stdio: 'ignore' }).status === 0;
  return { asyncio: py, uvloop: uv };
}

function coloopBuilt() {
  return existsSync(path.join(root, 'dist', 'index.js'));
}

// ---------------------------------------------------------------------------------------------
// Progress

function progress(enabled) {
  const tty = process.stderr.isTTY;
  const t0 = Date.now();
  let lastLine = 0;
  return {
    update(done, total, what, etaSec) {
      if (!enabled) return;
      const width = 30;
      const filled = Math.round((done / total) * width);
      const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
      const el = Math.round((Date.now() - t0) / 1000);
      const eta = etaSec !== undefined ? ` ~${Math.max(0, Math.round(etaSec))} s left` : '';
      const line = `[${bar}] ${done}/${total} ${el} s${eta}  ${what}`;
      if (tty) process.stderr.write(`\r\x1b[K${line.slice(0, (process.stderr.columns || 120) - 1)}`);
      else if (Date.now() - lastLine > 10_000 || done === total) {
        lastLine = Date.now();
        process.stderr.write(line + '\n');
      }
    },
    note(msg) {
      if (tty && enabled) process.stderr.write('\r\x1b[K');
      process.stderr.write(msg + '\n');
    },
    end() {
      if (tty && enabled) process.stderr.write('\n');
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.help) {
    // The header comment, up to the paragraph on fairness.
    const lines = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n');
    const end = lines.findIndex((l) => l.startsWith('// Fairness'));
    console.log(lines.slice(1, end - 1).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
    return;
  }
  const mode = o.smoke ? 'smoke' : o.headline ? 'headline' : 'full';
  const base = mode === 'smoke' ? SMOKE : mode === 'headline' ? HEADLINE : FULL;
  const rounds = Number(o.rounds ?? base.rounds);
  const duration = Number(o.duration ?? base.duration);
  const warmup = Number(o.warmup ?? base.warmup);
  const outDir = path.resolve(o.out ?? path.join(root, 'bench', 'results'));
  if (!(rounds >= 1 && duration > 0 && warmup >= 0)) throw new Error('--rounds >= 1, --duration > 0, --warmup >= 0');

  const notes = [];
  buildC();
  const cli = detectCli(o.cli);
  const clientKind = o.client ?? 'c';
  if (!['c', 'cli'].includes(clientKind)) throw new Error('--client is c or cli');
  const client = clientKind === 'c'
    ? { kind: 'c', cmd: [path.join(buildDir, 'load_epoll')], label: 'bench/echo/build/load_epoll (C, epoll)' }
    : { kind: 'cli', cmd: cli.cmd, label: `${cli.label} load` };
  if (cli.kind === 'stub') notes.push('dist/cli.js was not built: coloop servers ran under bench/echo/stub-cli.js (same arguments, same echo code paths).');
  if (!hasTaskset) notes.push('taskset not found: server and client were not pinned to separate cores.');
  if (cpus < 2) notes.push('one CPU: server and client share it.');

  const py = detectPython();
  const nodeFlags = (o['node-flags'] ?? '').split(/\s+/).filter(Boolean);
  if (nodeFlags.some((f) => !f.startsWith('--'))) throw new Error(`--node-flags takes node options (--x=y), not ${o['node-flags']}`);
  if (nodeFlags.length) notes.push(`every Node server (coloop and node:net) ran with ${nodeFlags.join(' ')}`);
  const defs = serverDefs(cli, o.baseline, nodeFlags);
  const wanted = (o.servers ? o.servers.split(',') : base.servers).map((s) => s.trim());
  if (o.baseline && !o.servers) wanted.push('native-base', 'native-protocol-base');
  const servers = [];
  for (const id of wanted) {
    const def = defs.find((d) => d.id === id);
    if (!def) throw new Error(`unknown server ${id} (one of ${defs.map((d) => d.id).join(', ')})`);
    if (def.python && !py.asyncio) {
      notes.push(`${def.label}: skipped, ${PY} not found.`);
      continue;
    }
    if (def.uvloop && !py.uvloop) {
      notes.push(`${def.label}: skipped, uvloop not installed for ${PY} (Debian: apt-get install python3-uvloop).`);
      continue;
    }
    if (def.uring) {
      const why = buildUring(def.uring);
      if (why !== null) {
        notes.push(`${def.label}: skipped, ${why} (Debian: apt-get install liburing-dev).`);
        continue;
      }
    }
    if (def.cmd.includes('serve') && !coloopBuilt()) {
      notes.push(`${def.label}: skipped, dist/ is not built (npm run build).`);
      continue;
    }
    servers.push(def);
  }
  const scenarios = (o.scenarios ? o.scenarios.split(',') : base.scenarios).map((id) => {
    const sc = SCENARIOS.find((s) => s.id === id.trim());
    if (!sc) throw new Error(`unknown scenario ${id} (one of ${SCENARIOS.map((s) => s.id).join(', ')})`);
    return sc;
  });
  if (o.list) {
    console.log('servers:', servers.map((s) => s.id).join(', '), '\nscenarios:', scenarios.map((s) => s.id).join(', '), '\nnotes:', notes.join(' '));
    return;
  }
  if (!servers.some((s) => s.id === 'c')) notes.push('The C reference was not run: fractions of it are not reported.');

  const prog = progress(!o['no-progress']);
  for (const n of notes) prog.note(`bench: ${n}`);
  prog.note(`bench: ${mode}: ${servers.length} servers × ${scenarios.length} scenarios × ${rounds} rounds, 2 × ${warmup} s warm-up + ${duration} s each; client: ${client.label}; pinning: ${hasTaskset ? `server core ${SERVER_CORE}, client core ${CLIENT_CORE}` : 'none'}`);

  const runs = [];
  const total = servers.length * scenarios.length * rounds;
  let done = 0;
  const started = Date.now();
  for (const sc of scenarios) {
    for (let r = 0; r < rounds; r++) {
      // A/B alternation: the order rotates each round, so no server always follows the same one.
      const order = servers.map((_, i) => servers[(i + r) % servers.length]);
      for (const def of order) {
        const perCell = done > 0 ? (Date.now() - started) / 1000 / done : warmup + duration + 1;
        prog.update(done, total, `${sc.label} · ${def.label} · round ${r + 1}/${rounds}`, perCell * (total - done));
        runs.push(await runCell(def, sc, r, { client, duration, warmup }, prog));
        done++;
      }
    }
  }
  prog.update(done, total, 'done', 0);
  prog.end();

  const results = {
    version: 1,
    kind: 'coloop-echo-bench',
    mode,
    date: new Date().toISOString(),
    wallSec: (Date.now() - started) / 1000,
    machine: { cpus, model: os.cpus()[0]?.model ?? '', kernel: os.release(), node: process.version, loadavg: os.loadavg(), taskset: hasTaskset, serverCore: SERVER_CORE, clientCore: CLIENT_CORE },
    config: { rounds, duration, warmup, host: HOST, fdLimit: FD_LIMIT, nodeFlags },
    client: { kind: client.kind, label: client.label },
    cli: { kind: cli.kind, label: cli.label },
    notes,
    servers: servers.map(({ id, label }) => ({ id, label })),
    scenarios,
    runs,
  };
  results.summary = summarize(results);
  mkdirSync(outDir, { recursive: true });
  const day = results.date.slice(0, 10);
  const jsonName = mode === 'full' ? `${day}.json` : `${day}-${mode}.json`;
  const md = renderMarkdown(results);
  writeFileSync(path.join(outDir, jsonName), JSON.stringify(results, null, 2) + '\n');
  writeFileSync(path.join(outDir, 'latest.md'), md);
  writeFileSync(path.join(outDir, 'latest.svg'), renderSvg(results));
  process.stdout.write('\n' + md + '\n');
  const rel = (f) => path.relative(process.cwd(), path.join(outDir, f));
  process.stdout.write(`Results: ${rel(jsonName)}, ${rel('latest.md')}, ${rel('latest.svg')}\n`);
}

const WARMUP_CONNS = 1000;

async function runCell(def, sc, round, { client, duration, warmup }, prog) {
  const rec = { server: def.id, scenario: sc.id, round };
  let srv;
  try {
    srv = await startServer(def);
    rec.banner = srv.banner;
    // The server's own footprint before any connection (a Node process alone is ~40 MiB): what
    // the load adds is peak minus this.
    const idle = procMemKiB(srv.child.pid);
    rec.serverRssIdleKiB = idle.rss;
    rec.serverAnonIdleKiB = idle.anon;
    // Two warm-ups. First a client of its own, the same scenario on at most WARMUP_CONNS
    // connections, unpaced: the server's first connections (a fresh Python asyncio server served
    // the first 100 at 2 ms a round trip, 46k msgs/s, and every later 100 at 196k) and coloop's
    // JIT warm-up (C10k's are opened by the measured run itself; its connect phase is not
    // measured). Then the measured client's own (--warmup), on the connections it measures: with
    // the first alone, the new connections' first moments fell in the window, when coloop's
    // JIT-compiled dispatch, specialised on the first warm-up's steady state, was deoptimized by
    // the new arrivals (node --trace-deopt: Loop.collect "wrong map" at the listener's first
    // event, Loop.tick "insufficient type feedback" at its first multi-batch turn) and ran slower
    // until recompiled: p99.9 of serve 2.8-3.2 ms against C's 1.4 at 100 x 64 B.
    if (warmup > 0) await runClient(client, srv.port, { ...sc, conns: Math.min(sc.conns, WARMUP_CONNS), rate: undefined }, warmup, 0);
    // Server CPU over the measured window only: sample /proc/<pid>/stat every 50 ms while the
    // client runs, then read the samples at [end - duration, end] (the client reports once it
    // stops measuring; its connect phase, and a CLI client's drain, are left out).
    // RSS counts the pages of the node executable a process has touched (file-backed, shared by
    // every node process); RssAnon is the memory the server has to itself. It has no peak field
    // of its own, so it is sampled with the CPU.
    const samples = [];
    let anonPeak = null;
    const sample = () => {
      const cpu = procCpuSec(srv.child.pid);
      if (cpu !== null) samples.push([performance.now(), cpu[0], cpu[1]]);
      const anon = procMemKiB(srv.child.pid).anon;
      if (Number.isFinite(anon) && (anonPeak === null || anon > anonPeak)) anonPeak = anon;
    };
    sample();
    const cores0 = coreTicks();
    const timer = setInterval(sample, 50);
    let res;
    try {
      res = await runClient(client, srv.port, sc, duration, warmup);
    } finally {
      clearInterval(timer);
    }
    sample();
    const cores1 = coreTicks();
    const mem = procMemKiB(srv.child.pid);
    rec.result = res;
    rec.serverCpuSec = cpuWindow(samples, res, duration);
    // Its user-space part: the kernel's share (the TCP work of read and write) is about the same
    // for every server, so the difference between two servers is mostly here.
    rec.serverUserCpuSec = cpuWindow(samples, res, duration, 2);
    rec.serverRssPeakKiB = mem.hwm;
    rec.serverRssKiB = mem.rss;
    rec.serverAnonPeakKiB = anonPeak;
    // Noise: how busy the server's core was beyond the server itself (other tenants' work).
    if (cores0 && cores1) {
      const busy = (c) => (cores1[c] && cores0[c] ? (cores1[c].busy - cores0[c].busy) / Math.max(1, cores1[c].total - cores0[c].total) : null);
      const span = samples.length > 1 ? (samples[samples.length - 1][0] - samples[0][0]) / 1000 : null;
      const srvShare = span && samples.length > 1 ? (samples[samples.length - 1][1] - samples[0][1]) / span : null;
      rec.serverCoreBusy = busy(SERVER_CORE);
      rec.clientCoreBusy = busy(CLIENT_CORE);
      rec.serverCoreOther = rec.serverCoreBusy != null && srvShare != null ? Math.max(0, rec.serverCoreBusy - srvShare) : null;
    }
    if (srv.child.exitCode !== null || srv.child.signalCode !== null) {
      rec.error = `server died during the run (${srv.child.exitCode ?? srv.child.signalCode})${tail(srv.stderr())}`;
    }
    if (res.connectFailures > 0 || res.errors > 0) prog.note(`bench: ${def.id} ${sc.id} round ${round + 1}: ${res.connectFailures} connect failures, ${res.errors} errors`);
  } catch (err) {
    rec.error = String(err.message ?? err);
    prog.note(`bench: ${def.id} ${sc.id} round ${round + 1} failed: ${rec.error}`);
  } finally {
    if (srv) rec.serverExit = await stopServer(srv.child);
  }
  return rec;
}


/**
 * CPU seconds between `end - measured` and `end`, interpolated between samples; end: the last
 * sample. `k` picks the reading: 1 user + kernel, 2 user space only.
 */
function cpuWindow(samples, res, duration, k = 1) {
  if (samples.length < 2) return null;
  const measured = (res && Number(res.duration)) || duration;
  // The client prints its JSON right after measuring (the C client) or after a short drain (the
  // CLI's): take the window ending at the client's exit, which is within ~50 ms of the last sample.
  const end = samples[samples.length - 1][0];
  const start = end - measured * 1000;
  const at = (t) => {
    if (t <= samples[0][0]) return samples[0][k];
    for (let i = 1; i < samples.length; i++) {
      const t1 = samples[i][0];
      const c1 = samples[i][k];
      if (t1 >= t) {
        const t0 = samples[i - 1][0];
        const c0 = samples[i - 1][k];
        return t1 === t0 ? c1 : c0 + ((c1 - c0) * (t - t0)) / (t1 - t0);
      }
    }
    return samples[samples.length - 1][k];
  };
  return Math.max(0, at(end) - at(start));
}

/** Per-core busy and total ticks from /proc/stat. */
function coreTicks() {
  try {
    const out = {};
    for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
      const m = /^cpu(\d+)\s+(.*)$/.exec(line);
      if (!m) continue;
      const v = m[2].trim().split(/\s+/).map(Number); // user nice system idle iowait irq softirq steal
      const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
      out[Number(m[1])] = { busy: total - v[3] - v[4], total };
    }
    return out;
  } catch {
    return null;
  }
}

function tail(stderr) {
  const lines = stderr.trim().split('\n').filter(Boolean);
  return lines.length ? `: ${lines.slice(-2).join(' | ').slice(0, 300)}` : '';
}

main().catch((err) => {
  killAll();
  console.error(`bench: ${err.stack ?? err}`);
  process.exit(1);
});
