// Smoke test of the echo benchmark suite (bench/echo): the C reference server builds and echoes
// byte-exactly through backpressure, and the suite's tiny mode produces well-formed JSON, Markdown
// and SVG. Speed is never asserted here.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'coloop-bench-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Checks that tags nest and close (enough for our hand-written SVG). */
function wellFormedXml(text: string): boolean {
  const stack: string[] = [];
  const body = text.replace(/<\?xml[^>]*\?>/, '').replace(/<!--[\s\S]*?-->/g, '');
  for (const m of body.matchAll(/<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g)) {
    const [, close, name, , selfClose] = m;
    if (selfClose) continue;
    if (close) {
      if (stack.pop() !== name) return false;
    } else stack.push(name!);
  }
  // nothing that looks like a tag was left unparsed
  const stray = body.replace(/<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g, '');
  return stack.length === 0 && !stray.includes('<');
}

/** The port a C echo server says it listens on ("listening on 127.0.0.1:PORT"). */
function listeningPort(server: ChildProcess): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let out = '';
    server.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    server.on('exit', (code) => reject(new Error(`exited ${code}`)));
  });
}

// The io_uring references are opt-in in the suite and need liburing (.ci/run installs liburing-dev
// when it can): without it, their tests are skipped and say why.
function buildUring(name: string): boolean {
  const r = spawnSync('cc', ['-O2', '-Wall', '-Werror', '-o', path.join(tmp, name), path.join(root, `bench/echo/c/${name}.c`), '-luring'], { encoding: 'utf8' });
  if (r.status !== 0) console.warn(`bench-suite test: ${name} did not build, its tests are skipped: ${r.stderr?.split('\n')[0]}`);
  return r.status === 0;
}
const uring = buildUring('echo_uring');
const uringBatch = buildUring('echo_uring_batch');
// [binary, extra arguments, built here (else by beforeAll)]: every mode the suite runs.
const references: Array<[string, string[], boolean | null]> = [
  ['echo_epoll', [], null],
  ['echo_uring', [], uring],
  ['echo_uring', ['--send', 'sync'], uring],
  ['echo_uring', ['--send', 'sync', '--setup', 'coop'], uring],
  ['echo_uring', ['--send', 'sync', '--wait', 'epoll'], uring],
  ['echo_uring', ['--recv', 'single'], uring],
  ['echo_uring_batch', [], uringBatch],
  ['echo_uring_batch', ['--read', 'syscall'], uringBatch],
];

describe.each(references)('C reference echo server %s %j', (name, extra, built) => {
  const bin = path.join(tmp, name);
  beforeAll(() => {
    if (built !== null) return; // built above
    const r = spawnSync('cc', ['-O2', '-Wall', '-Werror', '-o', bin, path.join(root, `bench/echo/c/${name}.c`)], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });

  it.skipIf(built === false)('echoes 8 MiB byte-exactly through partial writes, and exits 0 on SIGTERM', async () => {
    const server = spawn(bin, ['--host', '127.0.0.1', '--port', '0', ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const port = await listeningPort(server);
      const size = 8 * 1024 * 1024;
      const data = Buffer.alloc(size);
      for (let i = 0; i < size; i++) data[i] = (i * 7 + (i >> 13)) & 0xff;
      const sock = net.connect({ host: '127.0.0.1', port });
      await new Promise((r) => sock.once('connect', r));
      // Write everything before reading anything: the server's writes fill our receive buffer
      // and come back short, so it must keep the rest and stop reading until it drains.
      sock.pause();
      sock.write(data);
      await new Promise((r) => setTimeout(r, 300));
      const chunks: Buffer[] = [];
      let got = 0;
      await new Promise<void>((resolve, reject) => {
        sock.on('data', (d: Buffer) => {
          chunks.push(d);
          got += d.length;
          if (got >= size) resolve();
        });
        sock.on('error', reject);
        sock.resume();
      });
      sock.destroy();
      expect(Buffer.concat(chunks).equals(data)).toBe(true);
      const code = await new Promise<number | null>((resolve) => {
        server.once('exit', (c) => resolve(c));
        server.kill('SIGTERM');
      });
      expect(code).toBe(0);
    } finally {
      if (server.exitCode === null) server.kill('SIGKILL');
    }
  });
});

it.skipIf(!uring || !uringBatch)('the io_uring references refuse a mode they do not know, with their usage and status 2', () => {
  for (const [name, args] of [
    ['echo_uring', ['--send', 'bogus']],
    ['echo_uring', ['--wait', 'bogus']],
    ['echo_uring_batch', ['--read', 'bogus']],
  ] as const) {
    const r = spawnSync(path.join(tmp, name), ['--port', '0', ...args], { encoding: 'utf8', timeout: 5000 });
    expect(r.status, `${name} ${args.join(' ')}`).toBe(2);
    expect(r.stderr).toContain('usage:');
  }
});

describe('bench/echo/c/load_epoll.c', () => {
  const load = path.join(tmp, 'load_epoll_rate');
  const echo = path.join(tmp, 'echo_epoll_rate');
  beforeAll(() => {
    for (const [bin, name] of [[load, 'load_epoll'], [echo, 'echo_epoll']] as const) {
      const r = spawnSync('cc', ['-O2', '-Wall', '-Werror', '-o', bin, path.join(root, `bench/echo/c/${name}.c`)], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
    }
  });

  it('sends no more than the rate asks for, and says the rate in its JSON', async () => {
    const server = spawn(echo, ['--host', '127.0.0.1', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const port = await listeningPort(server);
      const rate = 2000;
      // Paced warm-up, then the measured second: 20 connections could echo far more than this
      // (unpaced, each sends again as soon as its echo is back).
      const r = spawnSync(load, ['--host', '127.0.0.1', '--port', String(port), '--conns', '20', '--size', '64', '--duration', '1', '--warmup', '0.3', '--rate', String(rate)], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(r.status, r.stderr).toBe(0);
      const res = JSON.parse(r.stdout);
      expect(res.rate).toBe(rate);
      expect(res.errors).toBe(0);
      expect(res.messages).toBeGreaterThan(0);
      // Message k is due at start + k/rate: at most rate x elapsed + 1 go out in the window.
      expect(res.messages).toBeLessThanOrEqual(Math.floor(rate * res.duration) + 1);
      // Unpaced, the JSON has no rate.
      const u = spawnSync(load, ['--host', '127.0.0.1', '--port', String(port), '--conns', '2', '--size', '64', '--duration', '0.2'], { encoding: 'utf8', timeout: 30_000 });
      expect(u.status, u.stderr).toBe(0);
      expect(JSON.parse(u.stdout).rate).toBeUndefined();
    } finally {
      server.kill('SIGTERM');
    }
  });

  it('reads the echoes in flight before it closes: the server it drove sees no connection reset', async () => {
    // coloop serve logs a connection's error (a read that meets ECONNRESET): a client that closes
    // with echoes unread makes its kernel reset the connection, and at 8 in flight every one of
    // the 50 has some unread at the end of the window.
    const server = spawn(process.execPath, [path.join(root, 'dist/cli.js'), 'serve', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    server.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => server.on('exit', resolve));
    try {
      const port = await listeningPort(server);
      const r = spawnSync(load, ['--host', '127.0.0.1', '--port', String(port), '--conns', '50', '--size', '64', '--pipeline', '8', '--duration', '0.5'], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).messages).toBeGreaterThan(0);
    } finally {
      server.kill('SIGINT');
    }
    expect(await exited).toBe(0);
    expect(stderr).not.toContain('connection error');
  });

  it('refuses a rate that is not a number of messages a second above 0 and at most 1e8, with status 2', () => {
    for (const bad of ['0', '-5', '5x', '1e9', 'fast']) {
      const r = spawnSync(load, ['--host', '127.0.0.1', '--port', '1', '--conns', '1', '--size', '1', '--duration', '1', '--rate', bad], { encoding: 'utf8', timeout: 5000 });
      expect(r.status, bad).toBe(2);
      expect(r.stderr).toContain('--rate');
    }
  });
});

describe('bench/echo/suite.js --smoke', () => {
  const out = path.join(tmp, 'results');
  let run: ReturnType<typeof spawnSync>;
  beforeAll(() => {
    // --node-flags reaches the node:net server (a flag placed after its script would be taken as
    // the script's own argument, and the server would refuse it).
    run = spawnSync(process.execPath, ['bench/echo/suite.js', '--smoke', '--out', out, '--no-progress', '--node-flags=--max-semi-space-size=2'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 50_000,
    });
  }, 55_000);

  it('exits 0 and prints the Markdown table', () => {
    expect(run.status, String(run.stderr)).toBe(0);
    expect(String(run.stdout)).toContain('| server | msgs/s (min–max)');
  });

  it('writes a dated JSON file with a result per server, a clean server exit and a summary', () => {
    const files = readdirSync(out);
    const json = files.find((f) => /^\d{4}-\d{2}-\d{2}-smoke\.json$/.test(f));
    expect(json, files.join(', ')).toBeDefined();
    const results = JSON.parse(readFileSync(path.join(out, json!), 'utf8'));
    expect(results.kind).toBe('coloop-echo-bench');
    expect(results.servers.map((s: { id: string }) => s.id)).toEqual(['c', 'node-pipe']);
    expect(results.runs).toHaveLength(2);
    for (const r of results.runs) {
      expect(r.error).toBeUndefined();
      expect(r.result.messages).toBeGreaterThan(0);
      expect(r.result.latencyUs.p99).toBeGreaterThan(0);
      expect(r.result.connectFailures).toBe(0);
      expect(r.serverExit).toBe(0);
      expect(r.serverCpuSec).toBeGreaterThanOrEqual(0);
      // Its user-space part, over the same window: never more than the whole.
      expect(r.serverUserCpuSec).toBeGreaterThanOrEqual(0);
      expect(r.serverUserCpuSec).toBeLessThanOrEqual(r.serverCpuSec);
      expect(r.serverRssPeakKiB).toBeGreaterThan(0);
    }
    const cell = results.summary['c100-64'];
    expect(cell.c.fracC).toBe(1);
    expect(cell['node-pipe'].fracC).toBeGreaterThan(0);
    expect(cell['node-pipe'].xNode).toBe(1);
    expect(Array.isArray(results.summary.goals)).toBe(true);
    expect(results.config.nodeFlags).toEqual(['--max-semi-space-size=2']);
    expect(results.notes).toContain('every Node server (coloop and node:net) ran with --max-semi-space-size=2');
  });

  it('writes latest.md and a well-formed latest.svg', () => {
    const md = readFileSync(path.join(out, 'latest.md'), 'utf8');
    expect(md).toMatch(/^# coloop echo benchmarks/);
    expect(md).toContain('C epoll (reference)');
    expect(md).toContain('node:net pipe');
    const svg = readFileSync(path.join(out, 'latest.svg'), 'utf8');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(wellFormedXml(svg)).toBe(true);
    expect((svg.match(/<rect /g) ?? []).length).toBeGreaterThanOrEqual(3); // background + 2 bars
    expect(svg).not.toMatch(/NaN|undefined/);
  });
});

describe('bench/echo/report.js goals', () => {
  it('judges a goal on the median fraction and shows the lowest and highest round beside it', async () => {
    const { summarize } = (await import(path.join(root, 'bench/echo/report.js'))) as {
      summarize: (results: unknown) => { goals: Array<{ goal: string; measured: Record<string, { value: number; text: string; pass: boolean } | null> }> };
    };
    const run = (server: string, round: number, msgsPerSec: number, error?: string) => ({
      server,
      scenario: 'c100-64',
      round,
      ...(error
        ? { error }
        : {
            result: { messages: msgsPerSec * 5, msgsPerSec, duration: 5, mbPerSec: 1, clientCpuSec: 1, latencyUs: { p50: 100, p99: 200, p999: 300 } },
            serverCpuSec: 1,
          }),
    });
    const results = {
      scenarios: [{ id: 'c100-64' }],
      servers: [{ id: 'c' }, { id: 'native' }],
      runs: [
        run('c', 0, 100_000), run('native', 0, 90_000),
        run('c', 1, 200_000), run('native', 1, 198_000), // a fast round for both: paired, 0.99
        run('c', 2, 100_000), run('native', 2, 95_000),
        run('c', 3, 100_000), run('native', 3, 0, 'server crashed'), // a failed round counts nowhere
      ],
    };
    const goal = summarize(results).goals.find((g) => g.goal.includes('100 × 64 B') && !g.goal.includes('in flight'))!;
    const native = goal.measured.native!;
    // The median over medians: native 95k over C 100k.
    expect(native.value).toBeCloseTo(0.95, 5);
    expect(native.pass).toBe(true);
    expect(native.text).toContain('rounds 0.90–0.99');
    // No user-space reading (results from before the split): no split table, and no NaN.
    const { renderMarkdown } = (await import(path.join(root, 'bench/echo/report.js'))) as { renderMarkdown: (results: unknown) => string };
    const meta = {
      mode: 'test', date: 'd', wallSec: 1, notes: [],
      machine: { cpus: 2, model: 'm', kernel: 'k', node: 'n', loadavg: [0, 0, 0], clientCore: 1, serverCore: 0, taskset: true },
      client: { label: 'c' }, config: { rounds: 4, warmup: 1, duration: 5 },
    };
    const scenarios = [{ id: 'c100-64', label: '100 conns × 64 B' }];
    const servers = [{ id: 'c', label: 'C epoll (reference)' }, { id: 'native', label: 'coloop native (serve)' }];
    expect(renderMarkdown({ ...results, ...meta, scenarios, servers })).not.toContain('Where the difference is');
    // With one: the split per message, and the difference to C in each part.
    for (const r of results.runs) if ('result' in r) Object.assign(r, { serverUserCpuSec: r.server === 'c' ? 0.1 : 0.4 });
    const md = renderMarkdown({ ...results, ...meta, scenarios, servers });
    expect(md).toContain('Where the difference is');
    // C: 1 s over 500k messages (the median round) = 2 µs, 0.2 of it user; native: 1 s over 475k.
    expect(md).toMatch(/\| 100 conns × 64 B \| 0\.20 \+ 1\.80 \| 0\.84 \(\+0\.64\) \+ 1\.26 \(−0\.54\) \|/);
    expect(md).not.toMatch(/NaN|undefined/);
    // Just under the target: three decimals, so the ❌ does not sit beside "0.95×".
    results.runs[5] = run('native', 2, 94_900);
    const under = summarize(results).goals.find((g) => g.goal === goal.goal)!.measured.native!;
    expect(under.pass).toBe(false);
    expect(under.text).toMatch(/^0\.949× /);
  });
});

describe('bench/echo/report.js on a paced scenario (equal load)', () => {
  it('compares servers by CPU per message, marks one that fell behind, and draws CPU bars', async () => {
    const { summarize, renderMarkdown, renderSvg } = (await import(path.join(root, 'bench/echo/report.js'))) as {
      summarize: (results: unknown) => Record<string, Record<string, { cpuFracC: number | null; behind: boolean; fracC: number | null }>>;
      renderMarkdown: (results: unknown) => string;
      renderSvg: (results: unknown) => string;
    };
    const sc = { id: 'c100-64-r100k', label: '100 conns × 64 B at 100k msgs/s', conns: 100, size: 64, pipeline: 1, rate: 100_000 };
    const run = (server: string, round: number, msgsPerSec: number, cpuSec: number) => ({
      server,
      scenario: sc.id,
      round,
      result: { messages: msgsPerSec * 5, msgsPerSec, duration: 5, mbPerSec: 1, clientCpuSec: 1, latencyUs: { p50: 50, p99: 500, p999: 900 } },
      serverCpuSec: cpuSec,
      serverUserCpuSec: cpuSec / 10,
    });
    const results = {
      mode: 'test', date: '2026-11-30T00:00:00Z', wallSec: 1, notes: [],
      machine: { cpus: 2, model: 'm', kernel: 'k', node: 'n', loadavg: [0, 0, 0], clientCore: 1, serverCore: 0, taskset: true },
      client: { label: 'c', kind: 'c' }, config: { rounds: 1, warmup: 1, duration: 5 },
      scenarios: [sc],
      servers: [{ id: 'c', label: 'C epoll (reference)' }, { id: 'native', label: 'coloop native (serve)' }, { id: 'js', label: 'coloop js (pure-JS selector)' }],
      // C: 2.5 s over 500k messages (5 µs each); native 6.25 µs; js kept only 90% of the rate.
      runs: [run('c', 0, 100_000, 2.5), run('native', 0, 100_000, 3.125), run('js', 0, 90_000, 4.5)],
    };
    const summary = summarize(results);
    const cells = summary[sc.id]!;
    expect(cells.native!.cpuFracC).toBeCloseTo(0.8, 10);
    // Every server got the same throughput: the goal over the pure-JS selector's is not judged on it.
    const overJs = (summary as unknown as { goals: Array<{ goal: string; measured: Record<string, unknown> }> }).goals.find((g) => g.goal.includes('pure-JS'))!;
    expect(overJs.measured.native).toBeNull();
    expect(cells.native!.behind).toBe(false);
    expect(cells.js!.behind).toBe(true);
    const md = renderMarkdown(results);
    expect(md).toContain('Equal load');
    expect(md).toContain('| × C (CPU) |');
    expect(md).toMatch(/\| coloop native \(serve\) \| 100\.0k \(100\.0k–100\.0k\) \| 1\.0 \| 0\.80× \|/);
    expect(md).toMatch(/coloop js \(pure-JS selector\) \| 90\.0k \(90\.0k–90\.0k\) ⚠ behind \|/);
    const svg = renderSvg(results);
    expect(wellFormedXml(svg)).toBe(true);
    expect(svg).toContain('0.80× C (CPU)');
    expect(svg).not.toMatch(/NaN|undefined/);
  });
});

describe('bench/echo/report.js against a baseline build', () => {
  it('pairs each round of a server with its -base twin and reports the median ratio of CPU per message', async () => {
    const { baselineRatios } = (await import(path.join(root, 'bench/echo/report.js'))) as {
      baselineRatios: (results: unknown) => Array<{ server: { id: string }; cpu: { median: number; min: number; max: number; n: number }; user: { median: number } | null }>;
    };
    const run = (server: string, round: number, cpuSec: number, userSec: number, error?: string) => ({
      server,
      scenario: 'c100-64',
      round,
      ...(error ? { error } : { result: { messages: 1000 }, serverCpuSec: cpuSec, serverUserCpuSec: userSec }),
    });
    const rows = baselineRatios({
      scenarios: [{ id: 'c100-64', label: '100 conns × 64 B' }],
      servers: [{ id: 'native' }, { id: 'native-base' }, { id: 'c' }],
      runs: [
        run('native', 0, 0.9, 0.2), run('native-base', 0, 1.0, 0.25), // 0.9, user 0.8
        run('native', 1, 1.8, 0.4), run('native-base', 1, 2.0, 0.4), // a slow round for both: still 0.9, user 1
        run('native', 2, 1.1, 0.3), run('native-base', 2, 1.0, 0.25), // 1.1, user 1.2
        run('native', 3, 1.0, 0.2), run('native-base', 3, 0, 0, 'server died'), // no pair: left out
        run('c', 0, 1, 0.1),
      ],
    });
    expect(rows).toHaveLength(1);
    expect(rows[0]!.server.id).toBe('native');
    expect(rows[0]!.cpu.n).toBe(3);
    expect(rows[0]!.cpu.median).toBeCloseTo(0.9, 10);
    expect(rows[0]!.cpu.min).toBeCloseTo(0.9, 10);
    expect(rows[0]!.cpu.max).toBeCloseTo(1.1, 10);
    expect(rows[0]!.user!.median).toBeCloseTo(1, 10);
  });
});

describe('bench/echo/builds.js', () => {
  it('runs another build on its own addon when one lies beside its dist/, else on the fallback', async () => {
    const { addonFor } = (await import(path.join(root, 'bench/echo/builds.js'))) as { addonFor: (dist: string, fallback: string) => string };
    const dir = mkdtempSync(path.join(os.tmpdir(), 'coloop-builds-'));
    try {
      mkdirSync(path.join(dir, 'dist'));
      expect(addonFor(path.join(dir, 'dist'), '/fallback.node')).toBe('/fallback.node');
      mkdirSync(path.join(dir, 'build/Release'), { recursive: true });
      writeFileSync(path.join(dir, 'build/Release/coloop.node'), '');
      expect(addonFor(path.join(dir, 'dist'), '/fallback.node')).toBe(path.join(dir, 'build/Release/coloop.node'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
