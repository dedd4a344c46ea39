import { describe, expect, it } from 'vitest';
import { all, connect, run, serve, sleep, spawn, type Connection, type Operation } from '../src/index.js';
import { BACKENDS, echoWith, openFds } from './helpers.js';

const echo = echoWith(2048);

const HOST = '127.0.0.1';
function* roundTrip(conn: Connection, text: string): Operation<string> {
  yield* conn.write(text);
  const out = new Uint8Array(text.length);
  let got = 0;
  while (got < out.length) {
    const n = yield* conn.readInto(out, got);
    if (n === 0) break;
    got += n;
  }
  return Buffer.from(out.subarray(0, got)).toString();
}

describe.each(BACKENDS)('faults on the %s backend', (backend) => {
  const go = <T>(main: () => Operation<T>) => run(main, { backend });

  it('closes the server under 1,000 connected clients: they keep being served, new ones are refused, nothing leaks', async () => {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const baseline = openFds();
    const outcome = await go(function* () {
      const server = yield* serve({ host: HOST, port: 0, backlog: 1024 }, echo);
      const clients: Connection[] = [];
      for (let i = 0; i < 1000; i++) clients.push(yield* connect({ port: server.port }));
      // Everyone is accepted and served before the close.
      const before = yield* all(clients.map((c, i) => () => roundTrip(c, `before ${i}`)));
      server.close();
      let refused = '';
      try {
        (yield* connect({ port: server.port })).close();
      } catch (err) {
        refused = (err as NodeJS.ErrnoException).code ?? '';
      }
      const after = yield* all(clients.map((c, i) => () => roundTrip(c, `after ${i}`)));
      for (const c of clients) c.close();
      return { before: before.filter((s, i) => s === `before ${i}`).length, after: after.filter((s, i) => s === `after ${i}`).length, refused };
    });
    expect(outcome).toEqual({ before: 1000, after: 1000, refused: 'ECONNREFUSED' });
    expect(openFds()).toBe(baseline);
  }, 60_000);

  it('keeps the writer bounded behind a reader that takes one byte at a time, and loses nothing', async () => {
    const size = 16 * 1024 * 1024;
    const payload = new Uint8Array(size);
    for (let i = 0; i < size; i++) payload[i] = (i * 13) & 0xff;
    const result = await go(function* () {
      const server = yield* serve({ host: HOST, port: 0 }, function* (conn) {
        yield* conn.write(payload);
        conn.end();
      });
      const conn = yield* connect({ port: server.port });
      const received = new Uint8Array(size);
      let got = 0;
      // Slow phase: one byte per read, a pause between reads.
      for (let i = 0; i < 30; i++) {
        got += yield* conn.readInto(received, got, 1);
        yield* sleep(5);
      }
      const heapDuringSlow = process.memoryUsage().arrayBuffers;
      for (;;) {
        const n = yield* conn.readInto(received, got, Math.min(65536, size - got) || 1);
        if (n === 0) break;
        got += n;
        if (got === size) {
          expect(yield* conn.read()).toBe(null);
          break;
        }
      }
      conn.close();
      server.close();
      return { got, same: Buffer.compare(Buffer.from(received), Buffer.from(payload)) === 0, heapDuringSlow };
    });
    expect(result.got).toBe(size);
    expect(result.same).toBe(true);
    // The writer held its one payload and no copies of it: what the reader has not taken waits in
    // kernel buffers (or the js backend's bounded emulation), not in JS memory.
    expect(result.heapDuringSlow).toBeLessThan(3 * size + 8 * 1024 * 1024);
  }, 60_000);

  it('cancels tasks still pending when run() settles its main task by failing', async () => {
    const log: string[] = [];
    const boom = new Error('main failed');
    await expect(
      go(function* () {
        yield* spawn(function* () {
          try {
            yield* sleep(60_000);
          } finally {
            log.push('child cleaned up');
          }
        });
        yield* sleep(1);
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(log).toEqual(['child cleaned up']);
  });
});
