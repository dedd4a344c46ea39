import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { connect, listen, run, serve, sleep, wait, type Operation } from '../src/index.js';
import { BACKENDS, echoWith } from './helpers.js';

const echo = echoWith(4096);

/** A node:net server that resets every connection as soon as it has read something. */
function resettingServer(): Promise<net.Server> {
  return new Promise((resolve) => {
    const server = net.createServer((socket) => socket.once('data', () => socket.resetAndDestroy()));
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

describe.each(BACKENDS)('network errors and IPv6 on the %s backend', (backend) => {
  const go = <T>(main: () => Operation<T>) => run(main, { backend });

  it('serves and connects over IPv6 loopback', async () => {
    const reply = await go(function* () {
      const server = yield* serve({ host: '::1', port: 0 }, echo);
      expect(server.family).toBe('IPv6');
      const conn = yield* connect({ host: '::1', port: server.port });
      expect(conn.remoteAddress).toBe('::1');
      yield* conn.write('six');
      const got = yield* conn.read();
      conn.close();
      server.close();
      return Buffer.from(got!).toString();
    });
    expect(reply).toBe('six');
  });

  it('surfaces a peer reset as ECONNRESET (read) or EPIPE/ECONNRESET (write) with code, errno and syscall', async () => {
    const server = await resettingServer();
    const port = (server.address() as net.AddressInfo).port;
    try {
      const errors = await go(function* () {
        const conn = yield* connect({ port });
        yield* conn.write('trigger');
        const seen: NodeJS.ErrnoException[] = [];
        try {
          yield* conn.read();
        } catch (err) {
          seen.push(err as NodeJS.ErrnoException);
        }
        yield* sleep(10);
        try {
          for (let i = 0; i < 100; i++) yield* conn.write(new Uint8Array(65536));
        } catch (err) {
          seen.push(err as NodeJS.ErrnoException);
        }
        conn.close();
        return seen;
      });
      expect(errors).toHaveLength(2);
      expect(errors[0]).toMatchObject({ code: 'ECONNRESET', syscall: 'read' });
      expect(errors[0]!.errno).toBeLessThan(0);
      expect(['EPIPE', 'ECONNRESET']).toContain(errors[1]!.code);
      expect(errors[1]!.syscall).toBe('write');
    } finally {
      server.close();
    }
  });

  it('keeps serving other connections when one is reset mid-transfer', async () => {
    const result = await go(function* () {
      const server = yield* serve({ host: '127.0.0.1', port: 0, onError: () => {} }, echo);
      const victim = yield* wait(
        new Promise<void>((resolve) => {
          const s = net.connect(server.port, '127.0.0.1', () => {
            s.write(Buffer.alloc(1 << 20));
            setTimeout(() => {
              s.resetAndDestroy();
              resolve();
            }, 5);
          });
        }),
      );
      const conn = yield* connect({ port: server.port });
      yield* conn.write('still serving');
      const got = yield* conn.read();
      conn.close();
      server.close();
      return [victim, Buffer.from(got!).toString()];
    });
    expect(result[1]).toBe('still serving');
  });

  it('keeps accepting when a client resets while still in the accept queue', async () => {
    const result = await go(function* () {
      const errors: unknown[] = [];
      const server = yield* listen({ host: '127.0.0.1', port: 0 });
      // Connect and reset before the server accepts: getpeername on the accepted fd says ENOTCONN.
      yield* wait(
        new Promise<void>((resolve) => {
          const s = net.connect(server.port, '127.0.0.1', () => {
            s.resetAndDestroy();
            setTimeout(resolve, 20);
          });
        }),
      );
      const reset = yield* server.accept();
      try {
        yield* reset.read();
      } catch (err) {
        errors.push((err as NodeJS.ErrnoException).code);
      }
      reset.close();
      const client = yield* connect({ port: server.port });
      const good = yield* server.accept();
      yield* client.write('next');
      const got = yield* good.read();
      client.close();
      good.close();
      server.close();
      return { errors, got: Buffer.from(got!).toString() };
    });
    expect(result.got).toBe('next');
    expect(result.errors.every((code) => code === 'ECONNRESET')).toBe(true);
  });

  it('rejects listen on an address the machine does not have with EADDRNOTAVAIL', async () => {
    const code = await go(function* () {
      try {
        const s = yield* listen({ host: '192.0.2.1', port: 0 });
        s.close();
        return 'listening';
      } catch (err) {
        return (err as NodeJS.ErrnoException).code;
      }
    });
    expect(code).toBe('EADDRNOTAVAIL');
  });
});
