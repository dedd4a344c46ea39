import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BACKENDS, DIST_ENTRY } from './helpers.js';

const SERVER = new URL('./fixtures/emfile-server.mjs', import.meta.url).pathname;
/** Descriptors left for connections in the server process. */
const SPARE = 10;
const CLIENTS = 25;

let child: ChildProcess | undefined;
const clients: net.Socket[] = [];

afterEach(() => {
  for (const c of clients.splice(0)) c.destroy();
  child?.kill('SIGKILL');
  child = undefined;
});

/** CPU seconds (user + system) the process has used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function startServer(backend: string, limit: number): Promise<{ port: number; fds: number }> {
  const script = `ulimit -n ${limit} && exec "${process.execPath}" "${SERVER}" "${DIST_ENTRY}" ${backend}`;
  child = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child!.once('exit', (code) => reject(new Error(`server exited early with ${code}`)));
    child!.stdout!.once('data', (d: Buffer) => {
      const [, port, fds] = d.toString().trim().split(' ');
      resolve({ port: Number(port), fds: Number(fds) });
    });
  });
}

/** Connects and keeps the socket; resolves with whether one echo round trip works. */
function echoOnce(port: number, message: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    clients.push(socket);
    const timer = setTimeout(() => resolve(false), timeoutMs);
    let got = '';
    socket.on('data', (d) => {
      got += d.toString();
      if (got === message) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    socket.on('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
    socket.write(message);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(BACKENDS)('running out of descriptors on the %s backend', (backend) => {
  it('does not spin on EMFILE and serves again once descriptors are freed', async () => {
    // Probe how many descriptors the server needs for itself, then allow SPARE more.
    const probe = await startServer(backend, 1024);
    child!.kill('SIGKILL');
    const { port } = await startServer(backend, probe.fds + SPARE);
    const pid = child!.pid!;

    // More clients than the server can hold: the first ones are served, the rest hit EMFILE.
    const first = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => echoOnce(port, `hello ${i}`, 1500)));
    const served = first.filter(Boolean).length;
    expect(served).toBeGreaterThan(0);
    expect(served).toBeLessThan(CLIENTS);

    // While descriptors stay exhausted, the accept loop backs off instead of spinning.
    const before = cpuSeconds(pid);
    await sleep(1000);
    expect(cpuSeconds(pid) - before).toBeLessThan(0.5);

    // Free every descriptor: the server recovers and serves a new client.
    for (const c of clients.splice(0)) c.destroy();
    await sleep(200);
    expect(await echoOnce(port, 'after recovery', 5000)).toBe(true);
    expect(child!.exitCode).toBe(null);
  }, 30_000);
});
