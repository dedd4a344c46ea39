#!/usr/bin/env node
// User-space instructions per echo round trip, counted by valgrind (callgrind): unlike time, the
// count repeats run after run whatever else the machine is doing, so a change of a few percent
// in the driver's or the addon's own work shows where wall-clock benchmarks only show noise.
//
//   node bench/instructions.js [--modes serve,proto] [--dist OTHER/dist ...]   (another build of the
//   driver, e.g. `npx tsc -p tsconfig.build.json --outDir /tmp/old-dist` on an older commit; with
//   a build/Release/coloop.node beside that dist/, its addon too, else this checkout's)
//   node bench/instructions.js --server [--modes serve,proto] [--pipeline D] [--size B] [--dist ...]
//
// --server counts the server alone: `coloop serve` (or `serve --protocol`) runs under callgrind and
// the C load client (bench/echo/build/load_epoll, 100 connections x 64 B) drives it for 3 s and
// then 9 s; the difference of the counts over the difference of the messages is the server's
// user-space instructions per message (~40 s per mode and build). --pipeline D keeps D messages in
// flight per connection (default 1; 8 is the echo suite's "8 in flight" scenario).
// --size B sends B-byte messages (default 64).
//
// Each mode runs bench/lib/echo-inproc.mjs twice (4,000 and 24,000 round trips, client and server
// in one process) and reports the difference / 20,000: startup and warm-up cancel out. Kernel work
// is not counted (callgrind sees user space only). Needs valgrind; takes ~20 s per mode and build.
//
// Compare builds placed alike: give both with --dist, outside the checkout (e.g. /tmp/a/dist and
// /tmp/b/dist). Identical code counted 8,753-8,775 per round trip from such copies, whatever their
// path's length, and 8,843-8,864 from this checkout's dist/ (as "this build" or through --dist):
// about 1% that is where the build sits, not what it does.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { addonFor } from './echo/builds.js';
import { startListening } from './lib/listening-server.mjs';
import { flag, modesOption, option, requireTools } from './lib/measure-cli.mjs';
import { buildLoadClient } from './lib/load-client.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const modes = modesOption('serve,proto');
const pipeline = Number(option('--pipeline', '1'));
const size = Number(option('--size', '64'));
if (!Number.isInteger(size) || size < 1 || size > 1 << 20) {
  console.error(`bench/instructions.js: --size takes a message size in bytes from 1 to 1048576, not ${option('--size')}`);
  process.exit(2);
}
if (!Number.isInteger(pipeline) || pipeline < 1 || pipeline > 1024) {
  console.error(`bench/instructions.js: --pipeline takes an integer from 1 to 1024, not ${option('--pipeline')}`);
  process.exit(2);
}
const builds = [['this build', null]];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) if (argv[i] === '--dist') builds.push([argv[i + 1], path.resolve(argv[i + 1])]);
requireTools('instructions.js', ['valgrind'], 'valgrind');

// Fixed seeds: with a random hash seed, V8's start-up search for a prime (detail::sprp, called
// from HashSeed::InitializeRoots) costs a different number of instructions in every process,
// millions of them, which came out as ±5% per round trip. With these seeds, repeated runs of one
// build agree to a few instructions per round trip. No concurrent recompilation: optimised code
// is installed at the same point in every run.
const NODE_FLAGS = ['--random-seed=42', '--hash-seed=42', '--no-concurrent-recompilation'];

/** The addon a --dist build runs with (see bench/echo/builds.js); COLOOP_ADDON_PATH wins for every build. */
function addonOf(dist) {
  return process.env.COLOOP_ADDON_PATH || addonFor(dist, path.join(here, '../build/Release/coloop.node'));
}

function count(n, mode, dist) {
  const env = { ...process.env };
  if (dist) Object.assign(env, { COLOOP_DIST: dist, COLOOP_ADDON_PATH: addonOf(dist) });
  const r = spawnSync('valgrind', ['--tool=callgrind', '--callgrind-out-file=/dev/null', process.execPath, ...NODE_FLAGS,
    path.join(here, 'lib/echo-inproc.mjs'), String(n), mode], { env, encoding: 'utf8' });
  const m = /Collected : (\d+)/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`valgrind run failed (${mode}, ${n}): ${r.stderr.slice(-500)}`);
  return Number(m[1]);
}

/** The server alone under callgrind, driven by the C load client for `seconds`: [instructions, messages]. */
async function countServer(seconds, mode, dist) {
  const env = { ...process.env };
  if (dist) Object.assign(env, { COLOOP_ADDON_PATH: addonOf(dist) });
  const cli = path.join(dist ?? path.join(here, '../dist'), 'cli.js');
  const args = ['--tool=callgrind', '--callgrind-out-file=/dev/null', process.execPath, ...NODE_FLAGS, cli, 'serve', '--port', '0'];
  if (mode === 'proto') args.push('--protocol');
  const { server, port, stderr, exited } = await startListening('valgrind', args, { env });
  try {
    const load = spawnSync(loadClient, ['--host', '127.0.0.1', '--port', String(port), '--conns', '100', '--size', String(size), '--pipeline', String(pipeline), '--duration', String(seconds), '--json'], { encoding: 'utf8', timeout: (seconds + 60) * 1000 });
    if (load.status !== 0) throw new Error(`load_epoll failed: ${load.stderr}`);
    const messages = JSON.parse(load.stdout).messages;
    server.kill('SIGINT');
    await exited;
    const m = /Collected : (\d+)/.exec(stderr());
    if (!m) throw new Error(`valgrind run failed (${mode}): ${stderr().slice(-500)}`);
    return [Number(m[1]), messages];
  } finally {
    if (server.exitCode === null) server.kill('SIGKILL');
  }
}


const serverOnly = flag('--server');
const loadClient = serverOnly ? buildLoadClient() : '';
const LOW = 4000;
const HIGH = 24000;
for (const mode of modes) {
  for (const [label, dist] of builds) {
    if (serverOnly) {
      const [i1, m1] = await countServer(3, mode, dist);
      const [i2, m2] = await countServer(9, mode, dist);
      const perMessage = (i2 - i1) / (m2 - m1);
      console.log(`${mode.padEnd(6)} ${label.padEnd(24)} ${Math.round(perMessage).toLocaleString('en')} server instructions per message (${m1.toLocaleString('en')} and ${m2.toLocaleString('en')} messages)`);
      continue;
    }
    const perRoundTrip = (count(HIGH, mode, dist) - count(LOW, mode, dist)) / (HIGH - LOW);
    console.log(`${mode.padEnd(6)} ${label.padEnd(24)} ${Math.round(perRoundTrip).toLocaleString('en')} instructions per round trip`);
  }
}
