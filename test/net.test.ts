import { closeSync, openSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  CancelledError,
  connect,
  listen,
  run,
  serve,
  sleep,
  spawn,
  type Operation,
  yieldNow,
  type Server,
  type Connection,
  sharedBuffer,
  withTimeout,
} from '../src/index.js';
import { currentTask } from '../src/primitives.js';
import type { Task } from '../src/task.js';
import { BACKENDS, connectAfterScopeCancelled, echo, openFds, parkedReaders, readAll, readExactly } from './helpers.js';

const HOST = '127.0.0.1';

/** A handler that replies 'ok', unless the first bytes are `word`: then it runs `fail` (which throws). */
function failOn(word: string, fail: () => never): (conn: Connection) => Operation<void> {
  return function* (conn) {
    const first = yield* conn.read();
    if (Buffer.from(first!).toString() === word) fail();
    yield* conn.write('ok');
  };
}

/** Sends `word` on one connection, then 'fine' on another; each reply is read to its end. */
function* badThenGood(port: number, word: string): Operation<[bad: string, good: string]> {
  const bad = yield* connect({ port });
  yield* bad.write(word);
  const badReply = yield* readAll(bad);
  bad.close();
  const good = yield* connect({ port });
  yield* good.write('fine');
  const goodReply = yield* readAll(good);
  good.close();
  return [badReply.toString(), goodReply.toString()];
}

describe.each(BACKENDS)('TCP on the %s backend', (backend) => {
  const go = <T>(main: () => Operation<T>) => run(main, { backend });

  it('echoes bytes between connect() and a serve() handler', async () => {
    const reply = await go(function* () {
      const server = yield* serve({ host: HOST, port: 0 }, echo);
      expect(server.port).toBeGreaterThan(0);
      expect(server.address).toBe(HOST);
      const conn = yield* connect({ host: HOST, port: server.port });
      expect(conn.remotePort).toBe(server.port);
      yield* conn.write('hello, coloop');
      const got = yield* readExactly(conn, 13);
      conn.close();
      server.close();
      return Buffer.from(got).toString();
    });
    expect(reply).toBe('hello, coloop');
  });

  it('accepts with listen()/accept() and reads null at end of stream after end()', async () => {
    const received = await go(function* () {
      const server = yield* listen({ host: HOST, port: 0 });
      const client = yield* spawn(function* () {
        const conn = yield* connect({ port: server.port });
        yield* conn.write('abc');
        conn.end();
        const back = yield* readAll(conn);
        conn.close();
        return back.toString();
      });
      const conn = yield* server.accept();
      const data = yield* readAll(conn);
      // Half-closed: the other direction still works.
      yield* conn.write(`got ${data.toString()}`);
      conn.close();
      server.close();
      return yield* client;
    });
    expect(received).toBe('got abc');
  });

  it('carries 8 MiB byte-exact through an echo server with a slow reader', async () => {
    const size = 8 * 1024 * 1024;
    const payload = new Uint8Array(size);
    for (let i = 0; i < size; i++) payload[i] = (i * 7 + (i >> 11)) & 0xff;
    const echoed = await go(function* () {
      const server = yield* serve({ host: HOST, port: 0 }, echo);
      const conn = yield* connect({ host: HOST, port: server.port });
      const writer = yield* spawn(function* () {
        yield* conn.write(payload);
        conn.end();
      });
      const out = new Uint8Array(size);
      let got = 0;
      let reads = 0;
      while (got < size) {
        const n = yield* conn.readInto(out, got, Math.min(4096, size - got));
        if (n === 0) break;
        got += n;
        if (++reads % 256 === 0) yield* sleep(1);
      }
      yield* writer;
      conn.close();
      server.close();
      return out.subarray(0, got);
    });
    expect(echoed.length).toBe(size);
    expect(Buffer.compare(Buffer.from(echoed), Buffer.from(payload))).toBe(0);
  });

  it('serves other tasks while a reader consumes a full socket buffer one byte at a time', async () => {
    // Every 1-byte read completes at once (the data is already there): the reader never waits
    // for the kernel, and must still leave room for the rest of the program.
    const SIZE = 32 * 1024;
    const { firstSeenAt, total } = await go(function* () {
      const server = yield* listen({ host: HOST, port: 0 });
      const client = yield* connect({ host: HOST, port: server.port });
      const conn = yield* server.accept();
      yield* client.write(new Uint8Array(SIZE).fill(7));
      yield* sleep(50); // every byte is in the server's receive buffer (or the js backend's queue)
      let otherRan = false;
      const reader = yield* spawn(function* (): Operation<{ firstSeenAt: number; total: number }> {
        const one = new Uint8Array(1);
        let firstSeenAt = -1;
        let total = 0;
        while (total < SIZE) {
          total += yield* conn.readInto(one);
          if (otherRan && firstSeenAt < 0) firstSeenAt = total;
        }
        return { firstSeenAt, total };
      });
      yield* spawn(function* () {
        otherRan = true;
      });
      const result = yield* reader;
      for (const c of [client, conn]) c.close();
      server.close();
      return result;
    });
    expect(total).toBe(SIZE);
    expect(firstSeenAt).toBeGreaterThan(0);
    expect(firstSeenAt).toBeLessThan(SIZE);
  });

  it('fails connect() to a closed port with ECONNREFUSED, code, errno and syscall', async () => {
    const err = await go(function* () {
      const server = yield* listen({ host: HOST, port: 0 });
      const port = server.port;
      server.close();
      try {
        yield* connect({ host: HOST, port });
      } catch (e) {
        return e as NodeJS.ErrnoException;
      }
      return null;
    });
    expect(err?.code).toBe('ECONNREFUSED');
    expect(err?.syscall).toBe('connect');
    expect(err?.errno).toBeLessThan(0);
    expect(err?.message).toContain('127.0.0.1');
  });

  it('fails listen() on a port in use with EADDRINUSE', async () => {
    const code = await go(function* () {
      const server = yield* listen({ host: HOST, port: 0 });
      try {
        yield* listen({ host: HOST, port: server.port });
        return 'no error';
      } catch (e) {
        return (e as NodeJS.ErrnoException).code;
      } finally {
        server.close();
      }
    });
    expect(code).toBe('EADDRINUSE');
  });

  it('gives a task blocked in accept() a clear error when the server closes, and serve() ends quietly', async () => {
    const outcome = await go(function* () {
      const server = yield* listen({ host: HOST, port: 0 });
      const acceptor = yield* spawn(function* () {
        try {
          yield* server.accept();
          return 'accepted';
        } catch (err) {
          return (err as NodeJS.ErrnoException).code;
        }
      });
      yield* sleep(1);
      server.close();
      const served = yield* serve({ host: HOST, port: 0 }, echo);
      yield* sleep(1);
      served.close();
      return yield* acceptor;
    });
    expect(outcome).toBe('ERR_SERVER_CLOSED');
  });

  it('lets running connections finish after the server closes', async () => {
    const reply = await go(function* () {
      let server!: Server;
      server = yield* serve({ host: HOST, port: 0 }, function* (conn) {
        server.close();
        yield* sleep(5);
        yield* conn.write('still here');
      });
      const conn = yield* connect({ host: HOST, port: server.port });
      const data = yield* readAll(conn);
      conn.close();
      return data.toString();
    });
    expect(reply).toBe('still here');
  });

  it('reports a handler error and closes only that connection', async () => {
    const errors: string[] = [];
    const replies = await go(function* () {
      const server = yield* serve(
        { host: HOST, port: 0, onError: (err) => errors.push((err as Error).message) },
        failOn('boom', () => {
          throw new Error('handler failed');
        }),
      );
      const replies = yield* badThenGood(server.port, 'boom');
      server.close();
      return replies;
    });
    expect(replies).toEqual(['', 'ok']);
    expect(errors).toEqual(['handler failed']);
  });

  it('reports a handler that throws at once or returns no Operation, and closes only that connection', async () => {
    const errors: string[] = [];
    const replies = await go(function* () {
      let calls = 0;
      const server = yield* serve({ host: HOST, port: 0, onError: (err) => errors.push(`${(err as Error).name}: ${(err as Error).message}`) }, (conn) => {
        calls++;
        if (calls === 1) throw new Error('not even started');
        if (calls === 2) return 42 as unknown as Operation<void>;
        return echo(conn);
      });
      const out: string[] = [];
      for (let i = 0; i < 3; i++) {
        const conn = yield* connect({ port: server.port });
        yield* conn.write('ping');
        if (i === 2) conn.end();
        out.push((yield* readAll(conn)).toString());
        conn.close();
      }
      server.close();
      return out;
    });
    expect(replies).toEqual(['', '', 'ping']);
    expect(errors).toHaveLength(2);
    expect(errors[0]).toBe('Error: not even started');
    expect(errors[1]).toMatch(/^TypeError: serve\(\): the handler returned .*42.*, not an Operation$/);
  });

  it("keeps a connection open until the tasks its handler spawned have finished, then closes it", async () => {
    const reply = await go(function* () {
      const server = yield* serve({ host: HOST, port: 0 }, function* (conn) {
        // The handler returns at once; its child writes later, on the same connection.
        yield* spawn(function* () {
          yield* sleep(5);
          yield* conn.write('from a child');
        });
      });
      const conn = yield* connect({ port: server.port });
      const data = yield* readAll(conn);
      conn.close();
      server.close();
      return data.toString();
    });
    expect(reply).toBe('from a child');
  });

  it('reports a handler that throws undefined, and keeps serving', async () => {
    const errors: unknown[] = [];
    const reply = await go(function* () {
      const server = yield* serve(
        { host: HOST, port: 0, onError: (err) => errors.push(err) },
        failOn('undefined', () => {
          throw undefined;
        }),
      );
      const [, good] = yield* badThenGood(server.port, 'undefined');
      server.close();
      return good;
    });
    expect(reply).toBe('ok');
    expect(errors).toEqual([undefined]);
  });

  it("reports the error of a task a handler spawned, though the handler swallowed the cancel it caused", async () => {
    const errors: string[] = [];
    const replies = await go(function* () {
      const server = yield* serve({ host: HOST, port: 0, onError: (err) => errors.push((err as Error).message) }, function* (conn) {
        yield* spawn(function* () {
          throw new Error('child failed');
        });
        try {
          yield* conn.read();
        } catch {
          // The child's failure cancels this read; the handler carries on and returns.
        }
      });
      const conn = yield* connect({ port: server.port });
      const data = yield* readAll(conn);
      conn.close();
      server.close();
      return data.length;
    });
    expect(replies).toBe(0);
    expect(errors).toEqual(['child failed']);
  });

  it('closes the listening socket when the scope that made the server is cancelled', async () => {
    const baseline = openFds();
    const outcome = await go(() => connectAfterScopeCancelled(() => serve({ host: HOST, port: 0 }, echo)));
    expect(outcome).toBe('ECONNREFUSED');
    expect(openFds()).toBe(baseline);
  });

  it('closes a connection accepted just as the server scope is cancelled, and the scope ends', async () => {
    const baseline = openFds();
    for (let i = 0; i < 5; i++) {
      // A scope that never ends would hang the run: give up after 5 s and say so.
      const outcome = Promise.race([
        go(function* () {
          const side = yield* listen({ host: HOST, port: 0 });
          const c1 = yield* connect({ port: side.port });
          const s1 = yield* side.accept();
          let port = 0;
          const scope: Task<unknown> = yield* spawn(function* () {
            const server = yield* serve({ host: HOST, port: 0 }, echo);
            port = server.port;
            yield* sleep(1e6);
          });
          // Polled in the same wait as the listening socket, just before it: this reader runs
          // first in the batch and cancels the scope while the accept loop is queued with its
          // new connection.
          yield* spawn(function* () {
            yield* s1.read();
            scope.cancel();
          });
          yield* sleep(5);
          const { loop } = yield* currentTask();
          yield* c1.write('x');
          const fd = loop.backend.sockets.connect(HOST, port);
          try {
            yield* scope;
          } catch {
            // cancelled
          }
          loop.backend.sockets.close(fd);
          c1.close();
          s1.close();
          side.close();
          return 'ended';
        }),
        new Promise<string>((resolve) => setTimeout(() => resolve('hung'), 5000).unref()),
      ]);
      expect(await outcome).toBe('ended');
    }
    expect(openFds()).toBe(baseline);
  });

  it("sends an onError that throws to the loop's onError, and keeps serving", async () => {
    const loopErrors: unknown[] = [];
    const reply = await run(
      function* () {
        const server = yield* serve(
          {
            host: HOST,
            port: 0,
            onError: () => {
              throw new Error('onError itself failed');
            },
          },
          failOn('boom', () => {
            throw new Error('handler failed');
          }),
        );
        const [, good] = yield* badThenGood(server.port, 'boom');
        server.close();
        return good;
      },
      { backend, onError: (err) => loopErrors.push(err) },
    );
    expect(reply).toBe('ok');
    expect(loopErrors.map((e) => (e as Error).message)).toEqual(['onError itself failed']);
  });

  it('rejects a read after close and a write after end with clear errors', async () => {
    const codes = await go(function* () {
      const server = yield* serve({ host: HOST, port: 0 }, echo);
      const conn = yield* connect({ port: server.port });
      conn.end();
      const out: string[] = [];
      try {
        yield* conn.write('x');
      } catch (err) {
        out.push((err as NodeJS.ErrnoException).code!);
      }
      conn.close();
      try {
        yield* conn.read();
      } catch (err) {
        out.push((err as NodeJS.ErrnoException).code!);
      }
      server.close();
      return out;
    });
    expect(codes).toEqual(['ERR_STREAM_WRITE_AFTER_END', 'ERR_SOCKET_CLOSED']);
  });

  it('refuses a second concurrent reader on one connection', async () => {
    const message = await go(function* () {
      const server = yield* serve({ host: HOST, port: 0 }, function* () {
        yield* sleep(20);
      });
      const conn = yield* connect({ port: server.port });
      const first = yield* spawn(() => conn.read());
      yield* sleep(1);
      let msg = '';
      try {
        yield* conn.read();
      } catch (err) {
        msg = (err as Error).message;
        expect((err as NodeJS.ErrnoException).code).toBe('ERR_SOCKET_BUSY');
      }
      first.cancel();
      conn.close();
      server.close();
      return msg;
    });
    expect(message).toMatch(/another task is already waiting to read/);
  });

  it('interrupts a task cancelled while queued at its next write, which the kernel could take, and writes nothing', async () => {
    // The write could complete inside the yield* without suspending; a cancel already waiting
    // must win, as it would at any yield.
    const { outcome, received } = await go(function* () {
      const server = yield* listen({ host: HOST, port: 0 });
      const client = yield* connect({ host: HOST, port: server.port });
      const conn = yield* server.accept();
      let wroteAnyway = false;
      const writer = yield* spawn(function* () {
        yield* yieldNow(); // queued again: the canceller runs before this task's next step
        yield* conn.write('should not be sent');
        wroteAnyway = true;
      });
      yield* spawn(function* () {
        writer.cancel();
      });
      let outcome: unknown;
      try {
        yield* writer;
      } catch (err) {
        outcome = err;
      }
      yield* conn.write('after');
      conn.end();
      const received = Buffer.from(yield* readAll(client)).toString();
      for (const c of [client, conn]) c.close();
      server.close();
      return { outcome: wroteAnyway ? 'wrote' : outcome, received };
    });
    expect(outcome).toBeInstanceOf(CancelledError);
    expect(received).toBe('after');
  });

  it('frees the read side as soon as its reader is cancelled, before the reader has run', async () => {
    const got = await go(function* () {
      const server = yield* serve({ host: HOST, port: 0 }, echo);
      const conn = yield* connect({ port: server.port });
      const reader = yield* spawn(() => conn.read());
      yield* sleep(1);
      reader.cancel();
      // No join first: the cancelled reader's claim is already released.
      yield* conn.write('mine');
      const chunk = yield* conn.read();
      try {
        yield* reader;
      } catch (err) {
        expect(err).toBeInstanceOf(CancelledError);
      }
      // And the released op still works for the next reader.
      yield* conn.write('again');
      const second = yield* conn.read();
      conn.close();
      server.close();
      return [Buffer.from(chunk!).toString(), Buffer.from(second!).toString()];
    });
    expect(got).toEqual(['mine', 'again']);
  });

  it('gives each of many parked readers its own bytes when their data arrives together', async () => {
    // Native: one poll reads ahead for every parked reader before any of them runs. read() must
    // not share its scratch buffer across them, and readInto must land in each one's buffer.
    const count = 24;
    const got = await go(() =>
      parkedReaders(
        count,
        function* (conn, i): Operation<string> {
          if (i % 2 === 0) return Buffer.from((yield* conn.read())!).toString();
          const buf = new Uint8Array(64).fill(0x2e);
          const n = yield* conn.readInto(buf, 3, 40);
          return Buffer.from(buf.subarray(0, 3 + n + 1)).toString();
        },
        (i) => `message ${i}`,
      ),
    );
    expect(got).toEqual(Array.from({ length: count }, (_, i) => (i % 2 === 0 ? `message ${i}` : `...message ${i}.`)));
  });

  it('gives each of many readers parked on sharedBuffer its own bytes, in the buffer when it runs', async () => {
    // The data for every reader arrives in one poll; each must find its own bytes in the shared
    // buffer when it resumes (the read is made then, not when the events are dispatched).
    const count = 24;
    const got = await go(() =>
      parkedReaders(
        count,
        function* (conn, i): Operation<string> {
          // Half of them read into a view at an offset: a view of it is the shared buffer too.
          const into = i % 2 === 0 ? sharedBuffer : sharedBuffer.subarray(100, 200);
          into.fill(0x2e, 0, 64);
          const n = yield* conn.readInto(into);
          return Buffer.from(into.subarray(0, n + 1)).toString();
        },
        (i) => `message ${i}`,
      ),
    );
    expect(got).toEqual(Array.from({ length: count }, (_, i) => `message ${i}.`));
  });

  it('gives readers on sharedBuffer their own bytes when more arrives at once than one poll reads ahead', async () => {
    // 24 x 40 KiB: some land in the region a poll packs reads into (then move in when the task
    // runs), the rest are read by their tasks; a reader whose last read was large is not read
    // ahead for at all. Each chunk is checked before the reader's next yield*.
    const count = 24;
    const size = 40 * 1024;
    const got = await go(() =>
      parkedReaders(
        count,
        function* (conn, i): Operation<number> {
          let n = 0;
          while (n < size) {
            const r = yield* conn.readInto(sharedBuffer, 0, Math.min(sharedBuffer.length, size - n));
            if (r === 0) break;
            for (let k = 0; k < r; k++) if (sharedBuffer[k] !== i) return -1;
            n += r;
          }
          return n;
        },
        (i) => new Uint8Array(size).fill(i),
      ),
    );
    expect(got).toEqual(Array.from({ length: count }, () => size));
  });

  it('resumes a reader of sharedBuffer at once, even after a step has spent its budget of socket calls', async () => {
    // 300 chunks of 100 B wait in the socket, so every read completes at once. After 64 in one
    // step the task goes to the back of the run queue: its next read must then be made when it
    // runs again, not made now and handed over a batch later, after the spoiler (which fills the
    // buffer every batch) has run.
    const chunks = 300;
    const result = await go(function* () {
      const server = yield* listen({ host: HOST, port: 0 });
      const client = yield* connect({ port: server.port });
      const conn = yield* server.accept();
      const data = new Uint8Array(chunks * 100);
      for (let c = 0; c < chunks; c++) data.fill(c & 0xff, c * 100, c * 100 + 100);
      yield* client.write(data);
      yield* sleep(5); // all of it in the server side's receive buffer
      const spoiler = yield* spawn(function* () {
        for (;;) {
          sharedBuffer.fill(0xee, 0, 100);
          yield* yieldNow();
        }
      });
      const bad: number[] = [];
      for (let c = 0; c < chunks; c++) {
        const n = yield* conn.readInto(sharedBuffer, 0, 100);
        if (n !== 100 || !sharedBuffer.subarray(0, 100).every((b) => b === (c & 0xff))) bad.push(c);
      }
      spoiler.cancel();
      for (const x of [client, conn]) x.close();
      server.close();
      return bad;
    });
    expect(result).toEqual([]);
  });

  it('refuses a readInto view of the memory past sharedBuffer, where reads ahead wait', async () => {
    const err = await go(function* () {
      const server = yield* serve({ host: HOST, port: 0 }, echo);
      const conn = yield* connect({ port: server.port });
      try {
        const past = new Uint8Array(sharedBuffer.buffer, sharedBuffer.byteLength - 8, 16);
        yield* conn.readInto(past);
        return null;
      } catch (e) {
        return e;
      } finally {
        conn.close();
        server.close();
      }
    });
    expect(err).toBeInstanceOf(RangeError);
    expect((err as Error).message).toMatch(/within sharedBuffer/);
  });

  it('sends what a write from sharedBuffer was given, though it waits while other tasks reuse the buffer', async () => {
    // The peer does not read at first, so the writes fill the socket buffers and one must wait;
    // meanwhile another task overwrites the shared buffer. Every chunk must arrive as written.
    const chunk = 64 * 1024;
    const chunks = 160; // 10 MiB: more than loopback's socket buffers hold
    const result = await go(function* () {
      const server = yield* listen({ host: HOST, port: 0 });
      const client = yield* connect({ port: server.port });
      const conn = yield* server.accept();
      let spoiled = 0;
      let overlapped = 0;
      const writer = yield* spawn(function* () {
        for (let c = 0; c < chunks; c++) {
          sharedBuffer.fill(c & 0xff);
          sharedBuffer[0] = c >> 8;
          const before = spoiled;
          yield* conn.write(sharedBuffer, 0, chunk);
          if (spoiled !== before) overlapped++; // the buffer was overwritten while this write waited
        }
        conn.end();
      });
      const spoiler = yield* spawn(function* () {
        for (;;) {
          sharedBuffer.fill(0xee);
          spoiled++;
          yield* sleep(1);
        }
      });
      yield* sleep(20); // the writer is waiting by now
      const received = yield* readAll(client);
      yield* writer;
      spoiler.cancel();
      client.close();
      conn.close();
      server.close();
      let bad = -1;
      for (let c = 0; c < chunks && bad < 0; c++) {
        const at = c * chunk;
        if (received[at] !== c >> 8) bad = c;
        for (let i = 1; i < chunk && bad < 0; i++) if (received[at + i] !== (c & 0xff)) bad = c;
      }
      return { length: received.length, bad, overlapped };
    });
    expect(result.length).toBe(chunk * chunks);
    expect(result.bad).toBe(-1);
    expect(result.overlapped).toBeGreaterThan(0);
  });

  it('reads into whichever buffer and offset each readInto names, switching between reads', async () => {
    const got = await go(function* () {
      const server = yield* serve({ host: HOST, port: 0 }, echo);
      const conn = yield* connect({ port: server.port });
      const a = new Uint8Array(16).fill(0x2d);
      const b = new Uint8Array(16).fill(0x2d);
      const seen: string[] = [];
      for (const [buf, offset] of [[a, 0], [b, 4], [a, 8], [b, 0]] as const) {
        const reader = yield* spawn(() => conn.readInto(buf, offset, 4));
        yield* sleep(1); // parked before the bytes come back
        yield* conn.write(`w${offset}`.padEnd(4, '_'));
        expect(yield* reader).toBe(4);
        seen.push(`${Buffer.from(a).toString()}|${Buffer.from(b).toString()}`);
      }
      conn.close();
      server.close();
      return seen;
    });
    expect(got).toEqual([
      'w0__------------|----------------',
      'w0__------------|----w4__--------',
      'w0__----w8__----|----w4__--------',
      'w0__----w8__----|w0__w4__--------',
    ]);
  });

  it('writes and reads through buffers reused, changed in place and switched, byte-exact', async () => {
    // Each call must send what the buffer holds now, and land in the view the call names (an
    // optimisation that caches anything per buffer must keep this true).
    const plan = 'aaabaabbab';
    const got = await go(function* () {
      const server = yield* listen({ host: HOST, port: 0 });
      const client = yield* connect({ port: server.port });
      const conn = yield* server.accept();
      // Views at offsets inside shared buffers: the calls must add each view's own offset.
      const sent = new Uint8Array(32);
      const a = sent.subarray(4, 8);
      const b = sent.subarray(13, 17);
      for (let i = 0; i < plan.length; i++) {
        const buf = plan[i] === 'a' ? a : b;
        buf.set(Buffer.from(`${plan[i]}${i}..`));
        yield* client.write(buf);
      }
      yield* sleep(10);
      const received = new Uint8Array(32).fill(0x2b);
      const r = received.subarray(3, 7);
      const s = received.subarray(21, 25);
      let out = '';
      for (const which of 'rrrsrrssrs') {
        const into = which === 'r' ? r : s;
        into.fill(0x2d);
        const n = yield* conn.readInto(into);
        out += Buffer.from(into.subarray(0, n)).toString();
      }
      client.close();
      conn.close();
      server.close();
      // Nothing landed outside the two views.
      expect([...received.subarray(0, 3), ...received.subarray(7, 21), ...received.subarray(25)].every((x) => x === 0x2b)).toBe(true);
      return out;
    });
    expect(got).toBe([...plan].map((c, i) => `${c}${i}..`).join(''));
  });

  it('writes from views over a SharedArrayBuffer and an ArrayBuffer in turn, byte-exact', async () => {
    // A view over a SharedArrayBuffer and one over an ArrayBuffer, alternately, each at an offset.
    const got = await go(function* () {
      const server = yield* listen({ host: HOST, port: 0 });
      const client = yield* connect({ port: server.port });
      const conn = yield* server.accept();
      const shared = new Uint8Array(new SharedArrayBuffer(32), 7, 6);
      const plain = new Uint8Array(32).subarray(9, 15);
      for (let i = 0; i < 6; i++) {
        const view = i % 3 === 1 ? plain : shared;
        view.set(Buffer.from(`${i % 3 === 1 ? 'p' : 's'}${i}:...`));
        yield* client.write(view, 1, 4);
      }
      let out = '';
      while (out.length < 24) out += Buffer.from((yield* conn.read(64))!).toString();
      client.close();
      conn.close();
      server.close();
      return out;
    });
    expect(got).toBe('0:..1:..2:..3:..4:..5:..');
  });

  it('writes back from the view it read into, and from one it no longer reads into, byte-exact', async () => {
    // A write from the buffer a connection last read into names its ArrayBuffer to the addon
    // (src/net/byte-io.ts): it must add the view's own offset and the write's, and a write from
    // a view the connection read into before must not be taken for the current one.
    const got = await go(function* () {
      const server = yield* serve({ host: HOST, port: 0 }, function* (conn) {
        const memory = new Uint8Array(64);
        const a = memory.subarray(5, 21);
        const b = memory.subarray(30, 46);
        let n = yield* conn.readInto(a);
        yield* conn.write(a, 1, n - 1); // "a0:456789" -> "0:456789"
        n = yield* conn.readInto(b);
        yield* conn.write(a, 0, 2); // a, read into before: "a0"
        yield* conn.write(b, 2, n - 2); // "b1:xyz" -> ":xyz"
        yield* conn.write(new Uint8Array(memory.buffer, 30, 2)); // b's first bytes through another view: "b1"
      });
      const conn = yield* connect({ port: server.port });
      yield* conn.write('a0:456789');
      yield* sleep(5);
      yield* conn.write('b1:xyz');
      let out = '';
      while (out.length < 16) out += Buffer.from((yield* conn.read(64))!).toString();
      conn.close();
      server.close();
      return out;
    });
    expect(got).toBe('0:456789a0:xyzb1');
  });

  it('loses no bytes when a reader parked in readInto is cancelled before they arrive', async () => {
    const got = await go(function* () {
      const server = yield* serve({ host: HOST, port: 0 }, echo);
      const conn = yield* connect({ port: server.port });
      const first = new Uint8Array(8).fill(0x2d);
      const reader = yield* spawn(() => conn.readInto(first));
      yield* sleep(1);
      reader.cancel();
      yield* conn.write('kept');
      yield* sleep(5); // echoed back and polled while nobody reads
      const second = new Uint8Array(8);
      const n = yield* conn.readInto(second);
      conn.close();
      server.close();
      return [Buffer.from(second.subarray(0, n)).toString(), Buffer.from(first).toString()];
    });
    expect(got).toEqual(['kept', '--------']);
  });

  it('gives each of many parked readers its own bytes when more arrives at once than one poll reads ahead', async () => {
    // Native: one poll reads ahead up to its budget (128 KiB); the readers past it read for
    // themselves when they run. 24 x 16 KiB is three times the budget.
    const count = 24;
    const size = 16 * 1024;
    const got = await go(() =>
      parkedReaders(
        count,
        function* (conn, i): Operation<boolean> {
          const bytes = yield* readExactly(conn, size);
          return bytes.length === size && bytes.every((b) => b === i);
        },
        (i) => new Uint8Array(size).fill(i),
      ),
    );
    expect(got).toEqual(Array.from({ length: count }, () => true));
  });

  it('removes interest when a task blocked in read, accept or connect is cancelled', async () => {
    const states = await go(function* () {
      const server = yield* listen({ host: HOST, port: 0 });
      const conn = yield* spawn(() => connect({ port: server.port }));
      const accepted = yield* server.accept();
      const client = yield* conn;
      const reader = yield* spawn(() => accepted.read());
      const acceptor = yield* spawn(() => server.accept());
      yield* sleep(2);
      reader.cancel();
      acceptor.cancel();
      yield* sleep(1);
      // The interest is gone: the connection can be read again by another task.
      yield* client.write('after cancel');
      const chunk = yield* accepted.read();
      accepted.close();
      client.close();
      server.close();
      return [reader.state, acceptor.state, Buffer.from(chunk!).toString()];
    });
    expect(states).toEqual(['cancelled', 'cancelled', 'after cancel']);
  });

  it('rejects bad options with TypeError and RangeError', async () => {
    const errors = await go(function* () {
      const out: string[] = [];
      for (const attempt of [
        () => listen({ port: -1 }),
        () => listen({ port: 70000 }),
        () => listen({ port: 'x' as never }),
        () => connect({ host: '' , port: 1 }),
        () => listen(null as never),
      ]) {
        try {
          yield* attempt();
          out.push('no error');
        } catch (err) {
          out.push((err as Error).name);
        }
      }
      return out;
    });
    expect(errors).toEqual(['RangeError', 'RangeError', 'RangeError', 'TypeError', 'TypeError']);
  });

  it('closes a connection that sends nothing within idleTimeout, quietly', async () => {
    const errors: unknown[] = [];
    const outcome = await go(function* () {
      const server = yield* serve({ host: HOST, port: 0, idleTimeout: 30, onError: (e) => errors.push(e) }, echo);
      const silent = yield* connect({ port: server.port });
      const active = yield* connect({ port: server.port });
      yield* active.write('ping');
      const pong = yield* active.read();
      // The silent client is closed by the server: it reads end of stream.
      const eof = yield* silent.read();
      silent.close();
      active.close();
      server.close();
      return [Buffer.from(pong!).toString(), eof];
    });
    expect(outcome).toEqual(['ping', null]);
    expect(errors).toEqual([]);
  });

  it('never times out a connection that keeps sending within idleTimeout, however long it lives', async () => {
    const replies = await go(function* () {
      const server = yield* serve({ host: HOST, port: 0, idleTimeout: 100 }, echo);
      const conn = yield* connect({ port: server.port });
      let echoed = 0;
      // About 400 ms in all, a message every 10 ms: the connection outlives the limit four times
      // over (and a loaded machine's scheduling gaps stay well under the limit).
      for (let i = 0; i < 40; i++) {
        yield* conn.write('x');
        const got = yield* conn.read();
        if (got !== null) echoed += got.length;
        yield* sleep(10);
      }
      conn.close();
      server.close();
      return echoed;
    });
    expect(replies).toBe(40);
  });

  it('throws ERR_IDLE_TIMEOUT from a read that waited longer than conn.idleTimeout', async () => {
    const code = await go(function* () {
      const server = yield* listen({ host: HOST, port: 0 });
      const client = yield* connect({ port: server.port });
      const conn = yield* server.accept();
      conn.idleTimeout = 10;
      try {
        yield* conn.read();
        return 'read returned';
      } catch (err) {
        return (err as NodeJS.ErrnoException).code;
      } finally {
        conn.close();
        client.close();
        server.close();
      }
    });
    expect(code).toBe('ERR_IDLE_TIMEOUT');
  });

  it('resolves host names through DNS', async () => {
    const reply = await go(function* () {
      const server = yield* serve({ host: 'localhost', port: 0 }, echo);
      const conn = yield* connect({ host: 'localhost', port: server.port });
      yield* conn.write('dns');
      const got = yield* readExactly(conn, 3);
      conn.close();
      server.close();
      return Buffer.from(got).toString();
    });
    expect(reply).toBe('dns');
  });

  it('cancels serve() handlers with their caller', async () => {
    const log: string[] = [];
    await go(function* () {
      const owner = yield* spawn(function* () {
        const server = yield* serve({ host: HOST, port: 0 }, function* (conn) {
          try {
            yield* conn.read();
          } catch (err) {
            log.push((err as Error).name);
            throw err;
          }
        });
        const conn = yield* connect({ port: server.port });
        yield* sleep(5);
        return conn;
      });
      yield* sleep(20);
      owner.cancel();
      try {
        yield* owner;
      } catch (err) {
        expect(err).toBeInstanceOf(CancelledError);
      }
    });
    expect(log).toEqual(['CancelledError']);
  });
});

// Native only: a reader woken with nothing read ahead reads when its task runs (Connection.wake).
// The js backend reads when the edge is dispatched (node:net has read the bytes already), so there
// the reader may hold them before the next task runs.
describe.each(BACKENDS.filter((b) => b === 'native'))('reads at resume on the %s backend', (backend) => {
  const go = <T>(main: () => Operation<T>) => run(main, { backend });

  it('fails a reader woken by data with ERR_SOCKET_CLOSED if its socket is closed before it runs, reading nothing', async () => {
    // The edge queues the reader, which reads when it runs; the task queued before it closes the
    // socket, and the fd number is taken again at once (by /dev/zero): the reader must not read.
    const outcome = await go(function* () {
      const server = yield* listen({ host: HOST, port: 0 });
      const client = yield* connect({ host: HOST, port: server.port });
      const conn = yield* server.accept();
      const reader = yield* spawn(function* (): Operation<unknown> {
        try {
          return yield* conn.read();
        } catch (err) {
          return err;
        }
      });
      yield* sleep(1); // parked
      yield* client.write('old');
      yield* yieldNow(); // the next poll's edge queues the reader behind this task
      conn.close();
      const reused = openSync('/dev/zero', 'r');
      try {
        return yield* reader;
      } finally {
        closeSync(reused);
        client.close();
        server.close();
      }
    });
    expect(outcome).toBeInstanceOf(Error);
    expect((outcome as { code?: string }).code).toBe('ERR_SOCKET_CLOSED');
  });

  it('loses no bytes when a reader woken by data is cancelled before it runs', async () => {
    const got = await go(function* () {
      const server = yield* listen({ host: HOST, port: 0 });
      const client = yield* connect({ host: HOST, port: server.port });
      const conn = yield* server.accept();
      const reader = yield* spawn(() => conn.read());
      yield* sleep(1); // parked
      yield* client.write('kept');
      yield* yieldNow(); // the next poll's edge queues the reader behind this task
      reader.cancel();
      let outcome: unknown;
      try {
        yield* reader;
      } catch (err) {
        outcome = err;
      }
      const chunk = yield* conn.read();
      for (const c of [client, conn]) c.close();
      server.close();
      return [outcome, Buffer.from(chunk!).toString()];
    });
    expect(got[0]).toBeInstanceOf(CancelledError);
    expect(got[1]).toBe('kept');
  });

  it('gives a reader parked on sharedBuffer the bytes a poll read for it, though cancelled before it runs and another reader reads next', async () => {
    // The poll reads 'kept' ahead into the region it packs such reads into, and resumes the
    // reader; the cancel comes after that (too late: the read has completed, and the reader
    // finds its bytes in sharedBuffer when it runs). A later poll packs another reader's bytes
    // into the same place; nothing is left behind on the first connection.
    const got = await go(function* () {
      const server = yield* listen({ host: HOST, port: 0 });
      const client = yield* connect({ host: HOST, port: server.port });
      const conn = yield* server.accept();
      const client2 = yield* connect({ host: HOST, port: server.port });
      const conn2 = yield* server.accept();
      const readShared = (c: Connection) =>
        function* (): Operation<string> {
          const n = yield* c.readInto(sharedBuffer);
          return Buffer.from(sharedBuffer.subarray(0, n)).toString();
        };
      const reader = yield* spawn(readShared(conn));
      const other = yield* spawn(readShared(conn2));
      yield* sleep(1); // both parked
      yield* client.write('kept');
      yield* yieldNow(); // the next poll reads 'kept' ahead and resumes the reader behind this task
      sharedBuffer.fill(0x2e, 0, 16); // this task uses the buffer meanwhile, as it may
      reader.cancel();
      const first = yield* reader;
      yield* client2.write('XXXX');
      const second = yield* other;
      yield* client.write('next');
      const after = yield* withTimeout(2000, conn.read());
      for (const c of [client, conn, client2, conn2]) c.close();
      server.close();
      return [first, second, Buffer.from(after!).toString()];
    });
    expect(got).toEqual(['kept', 'XXXX', 'next']);
  });
});

describe.each(BACKENDS.filter((b) => b === 'native'))('a buffer detached under a waiting operation on the %s backend', (backend) => {
  const go = <T>(main: () => Operation<T>) => run(main, { backend });

  it('fails that write with the RangeError, and the loop and the connection go on', async () => {
    const outcome = await go(function* () {
      const server = yield* listen({ host: HOST, port: 0 });
      const client = yield* connect({ port: server.port });
      const conn = yield* server.accept();
      // More than the kernel's buffers take while nobody reads: the write waits for an edge.
      const big = new Uint8Array(64 * 1024 * 1024);
      const writer = yield* spawn(() => conn.write(big));
      yield* sleep(20);
      expect(writer.state).toBe('pending');
      structuredClone(big.buffer, { transfer: [big.buffer] });
      // The client reads: the writer's socket turns writable, and its retry meets no buffer.
      let drained = 0;
      const reader = yield* spawn(function* () {
        const into = new Uint8Array(1 << 20);
        for (;;) {
          const n = yield* client.readInto(into);
          if (n === 0) return;
          drained += n;
        }
      });
      let error: unknown;
      try {
        yield* writer;
      } catch (err) {
        error = err;
      }
      // The connection is still usable: a later write goes through and is read.
      yield* conn.write('after');
      conn.end();
      yield* reader;
      client.close();
      conn.close();
      server.close();
      return { error, drained };
    });
    expect(outcome.error).toBeInstanceOf(RangeError);
    expect(outcome.drained).toBeGreaterThan(0);
  });
});
