import { describe, expect, it } from 'vitest';
import { connect, createServer, run, sleep, type Operation, type Protocol, type Transport } from '../src/index.js';
import { BACKENDS, connectAfterScopeCancelled, openFds, readAll } from './helpers.js';

const HOST = '127.0.0.1';

class Echo implements Protocol {
  transport!: Transport;
  connectionMade(transport: Transport): void {
    this.transport = transport;
  }
  dataReceived(data: Uint8Array): void {
    this.transport.write(data);
  }
}

describe.each(BACKENDS)('Protocol/Transport on the %s backend', (backend) => {
  const go = <T>(main: () => Operation<T>) => run(main, { backend });

  it('echoes through dataReceived and closes the transport on EOF by default', async () => {
    const log: string[] = [];
    const reply = await go(function* () {
      const server = yield* createServer(
        () =>
          new (class extends Echo {
            override connectionMade(t: Transport) {
              super.connectionMade(t);
              log.push('made');
            }
            connectionLost(err?: Error) {
              log.push(`lost ${err ? err.message : 'cleanly'}`);
            }
          })(),
        { host: HOST, port: 0 },
      );
      const conn = yield* connect({ port: server.port });
      yield* conn.write('protocol echo');
      conn.end();
      const data = yield* readAll(conn);
      conn.close();
      server.close();
      return data.toString();
    });
    expect(reply).toBe('protocol echo');
    expect(log).toEqual(['made', 'lost cleanly']);
  });

  it('keeps the transport open for writing when eofReceived returns true', async () => {
    const reply = await go(function* () {
      const server = yield* createServer(
        () => {
          let t!: Transport;
          let total = 0;
          return {
            connectionMade: (transport: Transport) => (t = transport),
            dataReceived: (data: Uint8Array) => (total += data.length),
            eofReceived: () => {
              t.write(`received ${total}`);
              t.close();
              return true;
            },
          };
        },
        { host: HOST, port: 0 },
      );
      const conn = yield* connect({ port: server.port });
      yield* conn.write(new Uint8Array(100_000));
      conn.end();
      const data = yield* readAll(conn);
      conn.close();
      server.close();
      return data.toString();
    });
    expect(reply).toBe('received 100000');
  });

  it('reads straight into a BufferedProtocol buffer', async () => {
    const reply = await go(function* () {
      const server = yield* createServer(
        () => {
          const buf = new Uint8Array(7);
          let t!: Transport;
          return {
            connectionMade: (transport: Transport) => (t = transport),
            getBuffer: () => buf,
            bufferUpdated: (n: number) => t.write(buf.subarray(0, n)),
          };
        },
        { host: HOST, port: 0 },
      );
      const conn = yield* connect({ port: server.port });
      yield* conn.write('buffered protocol, small buffer');
      conn.end();
      const data = yield* readAll(conn);
      conn.close();
      server.close();
      return data.toString();
    });
    expect(reply).toBe('buffered protocol, small buffer');
  });

  it('reads into and writes from views at offsets and over a SharedArrayBuffer, byte-exact', async () => {
    // The transport keeps the last buffer's ArrayBuffer and offset (src/net/byte-io.ts): each read
    // and write must still land in, and send from, the view it is given now.
    const reply = await go(function* () {
      const plain = new Uint8Array(64);
      const views = [plain.subarray(5, 9), new Uint8Array(new SharedArrayBuffer(16), 3, 4), plain.subarray(40, 44), plain];
      let i = 0;
      let current = views[0]!;
      const server = yield* createServer(
        () => {
          let t!: Transport;
          return {
            connectionMade: (transport: Transport) => (t = transport),
            getBuffer: () => (current = views[i++ % views.length]!),
            bufferUpdated: (n: number) => t.write(current, 0, n),
          };
        },
        { host: HOST, port: 0 },
      );
      const conn = yield* connect({ port: server.port });
      let out = '';
      for (let k = 0; k < 12; k++) {
        yield* conn.write(`m${k}:`.padEnd(4, '.'));
        out += Buffer.from((yield* conn.read(64))!).toString();
      }
      conn.close();
      server.close();
      return out;
    });
    expect(reply).toBe(Array.from({ length: 12 }, (_, k) => `m${k}:`.padEnd(4, '.')).join(''));
  });

  it('buffers writes the kernel cannot take and signals pauseWriting/resumeWriting', async () => {
    const events: string[] = [];
    const size = 16 * 1024 * 1024;
    const got = await go(function* () {
      const server = yield* createServer(
        () => ({
          connectionMade: (t: Transport) => {
            t.write(new Uint8Array(size).fill(7));
            t.close();
          },
          pauseWriting: () => events.push('pause'),
          resumeWriting: () => events.push('resume'),
        }),
        { host: HOST, port: 0, highWaterMark: 1024 * 1024 },
      );
      const conn = yield* connect({ port: server.port });
      yield* sleep(20);
      let total = 0;
      const buf = new Uint8Array(65536);
      for (;;) {
        const n = yield* conn.readInto(buf);
        if (n === 0) break;
        if (buf[0] !== 7) throw new Error('corrupt');
        total += n;
      }
      conn.close();
      server.close();
      return total;
    });
    expect(got).toBe(size);
    expect(events).toEqual(['pause', 'resume']);
  });

  it('gathers many buffered writes into order-preserving flushes', async () => {
    const count = 2000;
    const got = await go(function* () {
      const server = yield* createServer(
        () => ({
          connectionMade: (t: Transport) => {
            // Far more than the kernel takes at once: most of these wait in the transport.
            for (let i = 0; i < count; i++) t.write(`${String(i).padStart(6, '0')}:${'.'.repeat(2000)}\n`);
            t.close();
          },
        }),
        { host: HOST, port: 0 },
      );
      const conn = yield* connect({ port: server.port });
      yield* sleep(20);
      const data = yield* readAll(conn);
      conn.close();
      server.close();
      return data.toString();
    });
    const lines = got.split('\n').filter(Boolean);
    expect(lines).toHaveLength(count);
    lines.forEach((line, i) => expect(line).toBe(`${String(i).padStart(6, '0')}:${'.'.repeat(2000)}`));
  });

  it('reports an exception thrown in a protocol callback and aborts only that transport', async () => {
    const errors: string[] = [];
    const lost: string[] = [];
    const replies = await go(function* () {
      const server = yield* createServer(
        () => {
          let t!: Transport;
          return {
            connectionMade: (transport: Transport) => (t = transport),
            dataReceived: (data: Uint8Array) => {
              if (Buffer.from(data).toString() === 'boom') throw new Error('callback failed');
              t.write(data);
            },
            connectionLost: (err?: Error) => lost.push(err?.message ?? 'clean'),
          };
        },
        { host: HOST, port: 0, onError: (err) => errors.push((err as Error).message) },
      );
      const bad = yield* connect({ port: server.port });
      yield* bad.write('boom');
      const badReply = yield* readAll(bad);
      bad.close();
      const good = yield* connect({ port: server.port });
      yield* good.write('fine');
      good.end();
      const goodReply = yield* readAll(good);
      good.close();
      server.close();
      return [badReply.toString(), goodReply.toString()];
    });
    expect(replies).toEqual(['', 'fine']);
    expect(errors).toEqual(['callback failed']);
    expect(lost).toEqual(['callback failed', 'clean']);
  });

  it('waits for open transports after close() and aborts them when cancelled', async () => {
    const lost: string[] = [];
    await go(function* () {
      const server = yield* createServer(() => ({ connectionLost: () => lost.push('lost') }), { host: HOST, port: 0 });
      const conn = yield* connect({ port: server.port });
      yield* sleep(5);
      server.close();
      yield* sleep(5);
      expect(lost).toEqual([]);
      conn.close();
    });
    expect(lost).toEqual(['lost']);
  });

  it('closes the listening socket when the scope that made the server is cancelled', async () => {
    const baseline = openFds();
    const outcome = await go(() => connectAfterScopeCancelled(() => createServer(() => ({}), { host: HOST, port: 0 })));
    expect(outcome).toBe('ECONNREFUSED');
    expect(openFds()).toBe(baseline);
  });
});
