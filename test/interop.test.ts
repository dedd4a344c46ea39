import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { all, run, serve, sleep, spawn, wait } from '../src/index.js';
import { BACKENDS, echoWith } from './helpers.js';

const echo = echoWith(8192);

const PYTHON_CLIENT = new URL('./fixtures/asyncio_client.py', import.meta.url).pathname;

describe.each(BACKENDS)('living beside other code on the %s backend', (backend) => {
  it('echoes for a Python asyncio client, byte-exact', async () => {
    const result = await run(
      function* () {
        const server = yield* serve({ host: '127.0.0.1', port: 0 }, echo);
        try {
          const { stdout } = yield* wait(promisify(execFile)('python3', [PYTHON_CLIENT, String(server.port), '50', '20', '1000'], { timeout: 90_000 }));
          return JSON.parse(stdout);
        } finally {
          server.close();
        }
      },
      { backend },
    );
    expect(result).toEqual({ opened: 50, messages: 1000, mismatches: 0 });
  });

  it('keeps Node working: fs.promises, a node:net server and setInterval run beside a coloop task', async () => {
    const ticks: number[] = [];
    const interval = setInterval(() => ticks.push(Date.now()), 5);
    const nodeServer = net.createServer((socket) => socket.end('from node:net'));
    await new Promise<void>((resolve) => nodeServer.listen(0, '127.0.0.1', resolve));
    const nodePort = (nodeServer.address() as net.AddressInfo).port;
    try {
      const [file, reply] = await run(
        function* () {
          // Coloop tasks stay busy (timers and yields) the whole time.
          const busy = yield* spawn(function* () {
            for (let i = 0; i < 20; i++) yield* sleep(2);
          });
          const results = yield* all([
            () => wait(readFile(new URL(import.meta.url), 'utf8')),
            () =>
              wait(
                new Promise<string>((resolve, reject) => {
                  const socket = net.connect(nodePort, '127.0.0.1');
                  let data = '';
                  socket.on('data', (d) => (data += d.toString()));
                  socket.on('end', () => resolve(data));
                  socket.on('error', reject);
                }),
              ),
          ]);
          yield* busy;
          return results;
        },
        { backend },
      );
      expect(file).toContain('keeps Node working');
      expect(reply).toBe('from node:net');
      expect(ticks.length).toBeGreaterThan(2);
    } finally {
      clearInterval(interval);
      nodeServer.close();
    }
  });
});
