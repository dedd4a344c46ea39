import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';

/** The built CLI (`npm test` builds first: the pretest script). */
const CLI = new URL('../dist/cli.js', import.meta.url).pathname;
const HOST = '127.0.0.1';

const children = new Set<ChildProcess>();

afterEach(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
});

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function start(args: string[], command: string = process.execPath, prefix: string[] = []): { child: ChildProcess; out: { stdout: string; stderr: string } } {
  const child = spawn(command, [...prefix, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const out = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out.stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (out.stderr += chunk));
  return { child, out };
}

/** Waits for the child to exit, killing it (and failing) after `ms`. */
async function exited(child: ChildProcess, out: { stdout: string; stderr: string }, ms: number): Promise<Exit> {
  if (child.exitCode === null && child.signalCode === null) {
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    try {
      await once(child, 'close');
    } finally {
      clearTimeout(timer);
    }
  }
  return { code: child.exitCode, signal: child.signalCode, ...out };
}

/** Runs the CLI to completion. */
async function cli(args: string[], ms = 20_000): Promise<Exit> {
  const { child, out } = start(args);
  return exited(child, out, ms);
}

interface RunningServer {
  child: ChildProcess;
  out: { stdout: string; stderr: string };
  port: number;
  line: string;
}

/** Starts `coloop serve --port 0` and waits for its "listening on" line. */
async function startServer(args: string[], prefix?: { command: string; args: string[] }): Promise<RunningServer> {
  const { child, out } = start(['serve', '--host', HOST, '--port', '0', ...args], prefix?.command, prefix?.args);
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening on" line within 10 s; stderr: ${out.stderr}`)), 10_000);
    const check = () => {
      const match = /^listening on .*$/m.exec(out.stdout);
      if (match === null) return;
      clearTimeout(timer);
      resolve(match[0]);
    };
    child.stdout!.on('data', check);
    child.once('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${code}) before listening; stderr: ${out.stderr}`));
    });
  });
  const port = Number(/:(\d+) \(/.exec(line)![1]);
  return { child, out, port, line };
}

async function stopServer(server: RunningServer, signal: NodeJS.Signals = 'SIGTERM'): Promise<Exit> {
  server.child.kill(signal);
  return exited(server.child, server.out, 10_000);
}

interface LoadJson {
  conns: number;
  size: number;
  pipeline: number;
  duration: number;
  messages: number;
  bytes: number;
  msgsPerSec: number;
  mbPerSec: number;
  latencyUs: { p50: number; p99: number; p999: number };
  errors: number;
  connectFailures: number;
  connsOpened: number;
  starvedConns: number;
  clientCpuSec: number;
  firstError: string | null;
}

async function load(port: number, extra: string[] = [], ms = 25_000): Promise<{ exit: Exit; report: LoadJson }> {
  const exit = await cli(['load', '--host', HOST, '--port', String(port), '--conns', '20', '--size', '64', '--duration', '1', '--warmup', '0.2', '--json', ...extra], ms);
  let report: LoadJson;
  try {
    report = JSON.parse(exit.stdout) as LoadJson;
  } catch {
    throw new Error(`load printed no JSON (exit ${exit.code}); stdout: ${exit.stdout}; stderr: ${exit.stderr}`);
  }
  return { exit, report };
}

function expectClean(report: LoadJson, conns = 20): void {
  expect(report.firstError).toBeNull();
  expect(report.errors).toBe(0);
  expect(report.connectFailures).toBe(0);
  expect(report.connsOpened).toBe(conns);
  expect(report.starvedConns).toBe(0);
  expect(report.messages).toBeGreaterThan(0);
  expect(report.bytes).toBe(report.messages * report.size);
  expect(report.latencyUs.p50).toBeGreaterThan(0);
  expect(report.latencyUs.p50).toBeLessThanOrEqual(report.latencyUs.p99);
  expect(report.latencyUs.p99).toBeLessThanOrEqual(report.latencyUs.p999);
  expect(report.clientCpuSec).toBeGreaterThan(0);
}

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const SERVERS: [backend: string, extra: string[]][] = [
  ['native', []],
  ['js', []],
  ['node', []],
  ['node', ['--node-mode', 'data']],
  ['native', ['--protocol']],
  ['js', ['--protocol']],
];

describe.each(SERVERS)('coloop serve --backend %s %j', (backend, extra) => {
  it('echoes every byte of a load run and exits 0 on SIGTERM', async () => {
    const server = await startServer(['--backend', backend, ...extra]);
    const label = extra.includes('--protocol') ? `${backend}, protocol` : backend === 'node' ? `node, ${extra.includes('data') ? 'data' : 'pipe'}` : backend;
    expect(server.line).toBe(`listening on ${HOST}:${server.port} (backend ${label})`);
    expect(server.port).toBeGreaterThan(0);
    const { exit, report } = await load(server.port);
    expectClean(report);
    expect(report).toMatchObject({ conns: 20, size: 64, pipeline: 1 });
    expect(exit.code).toBe(0);
    const stopped = await stopServer(server);
    expect(stopped.signal).toBeNull();
    expect(stopped.code).toBe(0);
  }, 40_000);
});

describe.each(['native', 'js'])('coloop serve --backend %s with large messages', (backend) => {
  it('echoes 16 KiB messages, 4 in flight, byte-exact (reads that fill 2 KiB move the connection to sharedBuffer)', async () => {
    const server = await startServer(['--backend', backend]);
    const { exit, report } = await load(server.port, ['--size', '16384', '--pipeline', '4', '--conns', '8']);
    expectClean(report, 8);
    expect(report).toMatchObject({ size: 16384, pipeline: 4 });
    expect(exit.code).toBe(0);
    expect((await stopServer(server)).code).toBe(0);
  }, 40_000);
});

describe('coloop serve --backend native with many connections growing their own buffers', () => {
  it('echoes 1000 B messages on 300 connections byte-exact (own buffers carved from shared slabs, 256 B and up each)', async () => {
    // 300 x (256 + 512 + 1024 [+ 2048, when two messages arrive together]) B fill eight or more
    // 64 KiB slabs: a view that overlapped another connection's would mix two connections'
    // patterns, which the load client counts as errors.
    const server = await startServer(['--backend', 'native']);
    const { exit, report } = await load(server.port, ['--size', '1000', '--conns', '300', '--pipeline', '2']);
    expectClean(report, 300);
    expect(exit.code).toBe(0);
    expect((await stopServer(server)).code).toBe(0);
  }, 40_000);
});

describe('coloop load', () => {
  it('runs on the js backend, with a pipeline of large messages, and prints a table without --json', async () => {
    const server = await startServer(['--backend', 'native']);
    const { report } = await load(server.port, ['--backend', 'js', '--pipeline', '4', '--size', '10000', '--conns', '5']);
    expectClean(report, 5);
    expect(report.pipeline).toBe(4);
    const table = await cli(['load', '--port', String(server.port), '--conns', '3', '--duration', '0.5', '--warmup', '0']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/msg\/s/);
    expect(table.stdout).toMatch(/p50 [\d,]+ +p99 [\d,]+ +p99\.9 [\d,]+/);
    expect(table.stdout).toMatch(/3 +opened, 0 failed/);
    expect((await stopServer(server, 'SIGINT')).code).toBe(0);
  }, 40_000);

  it('paces its messages with --rate: no more than the schedule allows, and says the rate', async () => {
    const server = await startServer(['--backend', 'native']);
    const rate = 2000;
    const { exit, report } = await load(server.port, ['--rate', String(rate)]);
    expect(exit.code).toBe(0);
    expectClean(report);
    expect((report as LoadJson & { rate?: number }).rate).toBe(rate);
    // Message k is due k/rate s after the connections opened: the measured window (its length
    // rounded to the millisecond) holds at most rate x its length + 1 of them. 20 connections
    // unpaced echo many times that.
    expect(report.messages).toBeLessThanOrEqual(Math.ceil(rate * (report.duration + 0.001)) + 1);
    const unpaced = await load(server.port, ['--conns', '2', '--duration', '0.3', '--warmup', '0']);
    expect((unpaced.report as LoadJson & { rate?: number }).rate).toBeUndefined();
    expect((await stopServer(server)).code).toBe(0);
  }, 40_000);

  it('reports connect failures against a closed port and exits non-zero', async () => {
    const port = await closedPort();
    const { exit, report } = await load(port, ['--conns', '3']);
    expect(exit.code).toBe(1);
    expect(report.connectFailures).toBe(3);
    expect(report.connsOpened).toBe(0);
    expect(report.messages).toBe(0);
    expect(report.firstError).toMatch(/ECONNREFUSED/);
  }, 30_000);

  it('counts an echo that comes back different as an error and exits non-zero', async () => {
    // An "echo" server that flips one bit in every 1000th byte it returns.
    let seen = 0;
    const corrupt = net.createServer((socket) => {
      socket.on('error', () => {});
      socket.on('data', (data) => {
        for (let i = 0; i < data.length; i++) if (++seen % 1000 === 0) data[i]! ^= 1;
        socket.write(data);
      });
    });
    await new Promise<void>((resolve) => corrupt.listen(0, HOST, resolve));
    try {
      const { exit, report } = await load((corrupt.address() as net.AddressInfo).port, ['--conns', '2']);
      expect(exit.code).toBe(1);
      expect(report.errors).toBeGreaterThan(0);
      expect(report.firstError).toMatch(/came back different/);
    } finally {
      corrupt.close();
    }
  }, 30_000);

  it('ends at the hard deadline when echoes stop coming, reports and exits non-zero', async () => {
    // Accepts and reads, never answers: every round stays outstanding.
    const silent = net.createServer((socket) => {
      socket.on('error', () => {});
      socket.resume();
    });
    await new Promise<void>((resolve) => silent.listen(0, HOST, resolve));
    try {
      const started = Date.now();
      const { exit, report } = await load((silent.address() as net.AddressInfo).port, ['--conns', '2', '--duration', '0.2', '--warmup', '0'], 30_000);
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(exit.code).toBe(1);
      expect((report as LoadJson & { aborted: string }).aborted).toBe('deadline');
      expect(report.messages).toBe(0);
    } finally {
      silent.close();
    }
  }, 30_000);
});

describe('coloop serve under a descriptor limit', () => {
  const prlimit = spawnSync('prlimit', ['--version']).status === 0;
  it.skipIf(!prlimit)('keeps serving when accept runs out of descriptors (EMFILE)', async () => {
    // 48 descriptors: about 25 left for connections once Node is up.
    const server = await startServer(['--backend', 'native'], { command: 'prlimit', args: ['--nofile=48:48', process.execPath] });
    // More connections than descriptors: those left in the backlog get no service while the
    // others stay open (starved), and are accepted one after another as the first ones close.
    const crowded = await load(server.port, ['--conns', '60', '--warmup', '0']);
    expect(crowded.report.connsOpened).toBe(60);
    expect(crowded.report.starvedConns).toBeGreaterThan(20);
    expect(crowded.report.errors).toBe(0);
    expect(server.child.exitCode).toBeNull();
    // Every descriptor free again: a small load is served in full.
    const { exit, report } = await load(server.port, ['--conns', '5']);
    expectClean(report, 5);
    expect(exit.code).toBe(0);
    expect((await stopServer(server)).code).toBe(0);
  }, 40_000);
});

describe('bad usage exits 2 with a message', () => {
  it.each([
    [['serve', '--port', '0', '--bogus'], /Unknown option '--bogus'/],
    [['serve'], /--port is required/],
    [['serve', '--port', '99999'], /--port must be an integer from 0 to 65535/],
    [['serve', '--port', '0', '--backend', 'uv'], /--backend must be one of native, js, node/],
    [['serve', '--port', '0', '--backend', 'node', '--protocol'], /--protocol is for the native and js backends/],
    [['load', '--port', '1', '--conns', '0'], /--conns must be an integer from 1/],
    [['load', '--conns', '10'], /--port is required/],
    [['load', '--port', '1', '--duration', 'soon'], /--duration must be a number/],
    [['load', '--port', '1', '--rate', '0'], /--rate must be a number greater than 0/],
    [['load', '--port', '1', '--rate', 'fast'], /--rate must be a number greater than 0/],
    [['load', '--port', '1', '--json', 'extra'], /unexpected argument 'extra'/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [[], /a command is required/],
  ])('coloop %j', async (args, message) => {
    const exit = await cli(args, 10_000);
    expect(exit.code).toBe(2);
    expect(exit.stderr).toMatch(message);
    expect(exit.stderr).toMatch(/usage: coloop/);
    expect(exit.stdout).toBe('');
  });

  it('coloop bench passes its arguments to the echo suite', async () => {
    const exit = await cli(['bench', '--help'], 10_000);
    expect(exit.code).toBe(0);
    expect(exit.stdout).toMatch(/--headline/);
  });

  it('--help prints usage and exits 0', async () => {
    for (const args of [['--help'], ['serve', '--help'], ['load', '--help']]) {
      const exit = await cli(args, 10_000);
      expect(exit.code).toBe(0);
      expect(exit.stdout).toMatch(/usage: coloop/);
    }
  });
});
