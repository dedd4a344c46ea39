import { describe, expect, it } from 'vitest';
import { connect, listen, run, serve, sleep, spawn, withTimeout, TimeoutError, type Connection, type Operation } from '../src/index.js';
import { loadNative } from '../src/native.js';
import { BACKENDS, echoWith, openFds } from './helpers.js';

const echo = echoWith(64 * 1024);

const HOST = '127.0.0.1';
describe.each(BACKENDS)('backpressure and cancellation on the %s backend', (backend) => {
  const go = <T>(main: () => Operation<T>) => run(main, { backend });

  it('echoes a 64 MiB payload byte-exact to a slow reader', async () => {
    const size = 64 * 1024 * 1024;
    const payload = new Uint8Array(size);
    for (let i = 0; i < size; i += 4) payload[i] = (i >>> 2) & 0xff;
    const out = await go(function* () {
      const server = yield* serve({ host: HOST, port: 0 }, echo);
      const conn = yield* connect({ port: server.port });
      const writer = yield* spawn(function* () {
        yield* conn.write(payload);
        conn.end();
      });
      const received = new Uint8Array(size);
      let got = 0;
      let pauses = 0;
      while (got < size) {
        const n = yield* conn.readInto(received, got, Math.min(256 * 1024, size - got));
        if (n === 0) break;
        got += n;
        // Slow: stop reading now and then, so every buffer on the way fills up.
        if (pauses < 20 && got > (pauses + 1) * 3 * 1024 * 1024) {
          pauses++;
          yield* sleep(10);
        }
      }
      // Then end of stream, and not one byte more.
      expect(yield* conn.read()).toBe(null);
      yield* writer;
      conn.close();
      server.close();
      return received.subarray(0, got);
    });
    expect(out.length).toBe(size);
    expect(Buffer.compare(Buffer.from(out.buffer, out.byteOffset, out.length), Buffer.from(payload.buffer))).toBe(0);
  }, 60_000);

  it('makes write wait when the peer never reads, instead of buffering without bound', async () => {
    const { accepted, parked } = await go(function* () {
      const server = yield* listen({ host: HOST, port: 0 });
      const conn = yield* connect({ port: server.port });
      const silent = yield* server.accept();
      const chunk = new Uint8Array(1024 * 1024);
      let written = 0;
      const writer = yield* spawn(function* () {
        for (let i = 0; i < 256; i++) {
          yield* conn.write(chunk);
          written += chunk.length;
        }
      });
      yield* sleep(300);
      const result = { accepted: written, parked: writer.state === 'pending' };
      // Cancelling the blocked write removes its interest and leaks nothing.
      writer.cancel();
      yield* sleep(1);
      conn.close();
      silent.close();
      server.close();
      return result;
    });
    expect(parked).toBe(true);
    // Kernel socket buffers (or the js backend's emulated one) hold a few MiB at most.
    expect(accepted).toBeLessThan(32 * 1024 * 1024);
  });

  it('closes the descriptor of a connect cancelled mid-handshake', async () => {
    // The previous test's sockets may still be closing (the js backend lets node:net flush what
    // it queued before destroying): let them go before counting.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const baseline = openFds();
    const outcome = await go(function* () {
      // A kernel listening socket with a backlog of 1 that nobody accepts (made with the addon
      // directly: a node:net server accepts in the background): once it is full, the kernel
      // drops further SYNs and the next connect stays in progress.
      const binding = loadNative()!;
      const listener = binding.listen(HOST, 0, 1, false);
      const server = { port: binding.localAddress(listener).port, close: () => binding.close(listener) };
      const queued: Connection[] = [];
      let stuck = false;
      for (let i = 0; i < 8 && !stuck; i++) {
        try {
          queued.push(yield* withTimeout(200, connect({ port: server.port })));
        } catch (err) {
          if (!(err instanceof TimeoutError)) throw err;
          stuck = true;
        }
      }
      for (const c of queued) c.close();
      server.close();
      return stuck;
    });
    expect(outcome).toBe(true);
    expect(openFds()).toBe(baseline);
  });
});
