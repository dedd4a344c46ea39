import { readdirSync } from 'node:fs';
import { connect, listen, sleep, spawn, type BackendName, type Connection, type Operation } from '../src/index.js';

/**
 * Every driver test runs once per backend. The native one is not optional: if the addon failed to
 * build, its half of the suite fails rather than quietly testing only the JS backend.
 */
export const BACKENDS: readonly BackendName[] = (process.env.COLOOP_TEST_BACKENDS?.split(',') as BackendName[] | undefined) ?? [
  'js',
  'native',
];

/**
 * The built package, for scripts run in child processes (Node 20 cannot import .ts). `npm test`
 * builds first (the pretest script), so this is the code under test, not a stale copy.
 */
export const DIST_ENTRY = new URL('../dist/index.js', import.meta.url).pathname;

/** Descriptors this process has open now. */
export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** An echo handler with one buffer of `size` bytes per connection, reused for every message. */
export function echoWith(size: number): (conn: Connection) => Operation<void> {
  return function* echo(conn) {
    const buf = new Uint8Array(size);
    for (;;) {
      const n = yield* conn.readInto(buf);
      if (n === 0) return;
      yield* conn.write(buf, 0, n);
    }
  };
}

/** The echo handler most tests use. */
export const echo = echoWith(16 * 1024);

/** Reads until `length` bytes have come, or end of stream. */
export function* readExactly(conn: Connection, length: number): Operation<Uint8Array> {
  const out = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const n = yield* conn.readInto(out, got, length - got);
    if (n === 0) break;
    got += n;
  }
  return out.subarray(0, got);
}

/** Reads everything up to end of stream. */
export function* readAll(conn: Connection): Operation<Buffer> {
  const chunks: Uint8Array[] = [];
  for (;;) {
    const chunk = yield* conn.read();
    if (chunk === null) return Buffer.concat(chunks);
    chunks.push(chunk);
  }
}

/**
 * `count` connections, a reader task parked on the accepted side of each (`read(conn, i)`), then
 * `send(i)` written from each client at once: the readers' results, in order. Everything is closed.
 */
export function* parkedReaders<T>(
  count: number,
  read: (conn: Connection, i: number) => Operation<T>,
  send: (i: number) => Uint8Array | string,
): Operation<T[]> {
  const server = yield* listen({ host: '127.0.0.1', port: 0 });
  const clients: Connection[] = [];
  const accepted: Connection[] = [];
  for (let i = 0; i < count; i++) {
    clients.push(yield* connect({ port: server.port }));
    accepted.push(yield* server.accept());
  }
  const readers = [];
  for (let i = 0; i < count; i++) readers.push(yield* spawn(() => read(accepted[i]!, i)));
  yield* sleep(5); // every reader parked
  for (let i = 0; i < count; i++) yield* clients[i]!.write(send(i));
  const results: T[] = [];
  for (const reader of readers) results.push(yield* reader);
  for (const conn of [...clients, ...accepted]) conn.close();
  server.close();
  return results;
}

/**
 * Makes a server with `make` inside a scope, cancels the scope, then connects to the server's port:
 * 'connected', or the connect error's code (ECONNREFUSED once the listening socket is closed).
 */
export function* connectAfterScopeCancelled(make: () => Operation<{ port: number }>): Operation<string> {
  let port = 0;
  const scope = yield* spawn(function* () {
    port = (yield* make()).port;
    yield* sleep(1e6);
  });
  yield* sleep(5);
  scope.cancel();
  try {
    yield* scope;
  } catch {
    // cancelled
  }
  try {
    const conn = yield* connect({ port });
    conn.close();
    return 'connected';
  } catch (err) {
    return String((err as NodeJS.ErrnoException).code);
  }
}
