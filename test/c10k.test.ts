import { spawn as spawnChild } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { run, serve, wait } from '../src/index.js';
import { BACKENDS, echoWith, openFds } from './helpers.js';

const echo = echoWith(4096);

const CLIENT = new URL('./fixtures/echo-client.mjs', import.meta.url).pathname;
const CONNS = 10_000;

/** Runs the node:net client in a child process (its own fd budget) and parses its JSON line. */
function runClient(port: number, conns: number, messages: number, size: number): Promise<{ code: number | null; result: Record<string, number> }> {
  return new Promise((resolve, reject) => {
    const child = spawnChild(process.execPath, [CLIENT, String(port), String(conns), String(messages), String(size), '400'], {
      stdio: ['ignore', 'pipe', 'inherit'],
      timeout: 150_000,
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        resolve({ code, result: JSON.parse(out.trim().split('\n').pop() ?? '{}') });
      } catch (err) {
        reject(new Error(`client printed ${JSON.stringify(out)}: ${String(err)}`));
      }
    });
  });
}

describe.each(BACKENDS)('C10k on the %s backend', (backend) => {
  it(
    'serves 10,000 concurrent connections byte-exact and returns to its fd baseline',
    async () => {
      const baseline = openFds();
      let peak = 0;
      const { code, result } = await run(
        function* () {
          const server = yield* serve({ host: '127.0.0.1', port: 0, backlog: 4096 }, echo);
          const timer = setInterval(() => (peak = Math.max(peak, openFds())), 100);
          try {
            return yield* wait(runClient(server.port, CONNS, 2, 64));
          } finally {
            clearInterval(timer);
            server.close();
          }
        },
        { backend },
      );
      expect(result).toEqual({ opened: CONNS, failed: 0, messages: CONNS * 3, mismatches: 0 });
      expect(code).toBe(0);
      // All 10,000 were held at once (sampled), and every one was closed after.
      expect(peak).toBeGreaterThanOrEqual(baseline + CONNS);
      expect(openFds()).toBe(baseline);
    },
    180_000,
  );
});
