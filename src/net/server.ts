import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { SocketApi } from '../backend/backend.js';
import { CancelledError, describe, errnoError, socketStateError } from '../errors.js';
import type { IoHandler, Loop, TimerWaiter } from '../loop.js';
import { ERROR, HANGUP, READABLE } from '../native.js';
import { isOperationSource, type Operation, type OperationSource } from '../operation.js';
import { checkDelay, currentTask, spawn, wait } from '../primitives.js';
import { NEXT, THROW, type Observer, type Task } from '../task.js';
import { Connection } from './connection.js';
import { EAGAIN, EMFILE, ENFILE, ENOBUFS, ENOMEM, RETRY_ACCEPT } from './errno.js';
import { ReusableOp } from './reusable-op.js';

export interface ListenOptions {
  /** Address or host name to bind. Default '0.0.0.0' (every IPv4 interface). */
  host?: string;
  /** Port; 0 picks a free one (read it from `server.port`). */
  port: number;
  /** Length of the kernel's queue of connections not yet accepted. Default 511, as Node's. */
  backlog?: number;
  /** SO_REUSEPORT: several listeners (processes) share the port. Native backend only. */
  reusePort?: boolean;
}

export interface ConnectOptions {
  host?: string;
  port: number;
}

/**
 * How long accept waits before trying again after EMFILE/ENFILE (no descriptor free). The pending
 * connection stays queued in the kernel and, edge-triggered, brings no new event: a timer retries,
 * so the server neither spins nor stalls, and recovers once descriptors are freed.
 */
const ACCEPT_BACKOFF_MS = 50;

/** A listening TCP socket. */
export class Server implements IoHandler {
  readonly address: string;
  readonly family: 'IPv4' | 'IPv6';
  readonly port: number;
  private closed = false;
  private readonly token: number;
  private readonly acceptor: AcceptOp;

  /** @internal Use `listen()`. */
  constructor(
    readonly loop: Loop,
    readonly sockets: SocketApi,
    readonly fd: number,
  ) {
    try {
      this.token = loop.register(fd, this);
    } catch (err) {
      sockets.close(fd);
      throw err;
    }
    const local = sockets.localAddress(fd);
    this.address = local.address;
    this.family = local.family;
    this.port = local.port;
    this.acceptor = new AcceptOp(this);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The next connection, waiting for one if none is queued. After close(): ERR_SERVER_CLOSED. */
  accept(): Operation<Connection> {
    if (this.closed) throw serverClosed();
    this.acceptor.prepare(true);
    return this.acceptor as Operation<Connection>;
  }

  /** @internal The next connection's bare descriptor (for createServer's transports). */
  acceptDescriptor(): Operation<number> {
    if (this.closed) throw serverClosed();
    this.acceptor.prepare(false);
    return this.acceptor as Operation<number>;
  }

  /** Stops listening. A task waiting in accept() gets ERR_SERVER_CLOSED; connections live on. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.loop.unregister(this.fd, this.token);
    this.sockets.close(this.fd);
    this.acceptor.fail();
  }

  onIo(bits: number): void {
    if (bits & (READABLE | HANGUP | ERROR)) this.acceptor.ready();
  }
}

function serverClosed(): Error {
  return socketStateError('ERR_SERVER_CLOSED', 'the server is closed');
}

class AcceptOp extends ReusableOp<Connection | number> implements TimerWaiter {
  private task: Task<unknown> | null = null;
  private timer = -1;
  private wrap = true;
  private result: Connection | number | Error | null = null;

  constructor(private readonly server: Server) {
    super();
  }

  /** `wrap`: deliver a registered Connection, else the bare descriptor. */
  prepare(wrap: boolean): void {
    this.claim('accept');
    this.wrap = wrap;
  }

  start(task: Task<unknown>): boolean {
    if (this.attempt()) return this.deliver(task, true);
    this.task = task;
    return false;
  }

  override abort(): void {
    this.task = null;
    this.stopTimer();
    this.release();
  }

  /** An edge on the listening socket (or the back-off timer): try again. */
  ready(): void {
    const task = this.task;
    if (task === null || !this.attempt()) return;
    this.task = null;
    this.stopTimer();
    this.deliver(task, false);
  }

  onTimer(): void {
    this.timer = -1;
    this.ready();
  }

  fail(): void {
    const task = this.task;
    if (task === null) return;
    this.task = null;
    this.stopTimer();
    task.resume(THROW, serverClosed());
  }

  /** Accepts one connection into `result`; false when the task must wait. */
  private attempt(): boolean {
    const { sockets, fd, loop } = this.server;
    for (;;) {
      const r = sockets.accept(fd);
      if (r >= 0) {
        if (!this.wrap) this.result = r;
        else {
          try {
            this.result = new Connection(loop, sockets, r, false);
          } catch (err) {
            this.result = err as Error;
          }
        }
        return true;
      }
      if (r === EAGAIN) return false;
      // The connection was reset before we took it, a signal, or a network error that accept(2)
      // passes on for the new connection ("treat them like EAGAIN by retrying"): others may wait.
      if (RETRY_ACCEPT.has(r)) continue;
      if (r === EMFILE || r === ENFILE || r === ENOBUFS || r === ENOMEM) {
        if (this.timer < 0) this.timer = loop.addTimer(ACCEPT_BACKOFF_MS, this);
        return false;
      }
      this.result = errnoError(r, 'accept');
      return true;
    }
  }

  private deliver(task: Task<unknown>, now: boolean): boolean {
    const result = this.result!;
    this.result = null;
    const mode = result instanceof Error ? THROW : NEXT;
    if (now) {
      task.resumeMode = mode;
      task.resumeValue = result;
    } else {
      task.resume(mode, result);
    }
    return true;
  }

  private stopTimer(): void {
    if (this.timer >= 0) this.server.loop.cancelTimer(this.timer);
    this.timer = -1;
  }
}

function checkPort(port: unknown, what: string): number {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`${what}: port must be an integer from 0 to 65535, not ${describe(port)}`);
  }
  return port;
}

function checkHost(host: unknown, what: string): string | undefined {
  if (host === undefined) return undefined;
  if (typeof host !== 'string' || host.length === 0) throw new TypeError(`${what}: host must be a non-empty string, not ${describe(host)}`);
  return host;
}

/** A numeric address for `host`: itself if it is one, else the first DNS answer. */
function* resolve(host: string): Operation<string> {
  if (isIP(host) !== 0) return host;
  const answer = yield* wait(lookup(host));
  return answer.address;
}

/** Binds and listens. Errors (EADDRINUSE, EACCES, ...) are Node-style, with code and syscall. */
export function* listen(options: ListenOptions): Operation<Server> {
  if (typeof options !== 'object' || options === null) throw new TypeError(`listen() takes options, not ${describe(options)}`);
  const port = checkPort(options.port, 'listen()');
  const host = yield* resolve(checkHost(options.host, 'listen()') ?? '0.0.0.0');
  const backlog = options.backlog ?? 511;
  if (!Number.isInteger(backlog) || backlog < 0) throw new RangeError(`listen(): backlog must be a non-negative integer, not ${describe(backlog)}`);
  if (options.reusePort !== undefined && typeof options.reusePort !== 'boolean') throw new TypeError('listen(): reusePort must be a boolean');
  const { loop } = yield* currentTask();
  const sockets = loop.backend.sockets;
  const pending = sockets.listen(host, port, backlog, options.reusePort ?? false);
  let fd: number;
  if (typeof pending === 'number') fd = pending;
  else {
    try {
      fd = yield* wait(pending);
    } catch (err) {
      // Cancelled while binding: the descriptor still arrives, and is closed then.
      if (err instanceof CancelledError) pending.then((late) => sockets.close(late), () => {});
      throw err;
    }
  }
  return new Server(loop, sockets, fd);
}

/** Connects to `host:port` (default host 127.0.0.1). Errors: ECONNREFUSED, ETIMEDOUT, ... */
export function* connect(options: ConnectOptions): Operation<Connection> {
  if (typeof options !== 'object' || options === null) throw new TypeError(`connect() takes options, not ${describe(options)}`);
  const port = checkPort(options.port, 'connect()');
  const host = yield* resolve(checkHost(options.host, 'connect()') ?? '127.0.0.1');
  const { loop } = yield* currentTask();
  const sockets = loop.backend.sockets;
  const conn = new Connection(loop, sockets, sockets.connect(host, port), true, { address: host, port });
  try {
    yield* conn.waitConnected(host, port);
  } catch (err) {
    // Failed or cancelled mid-handshake: the descriptor goes with it.
    conn.close();
    throw err;
  }
  return conn;
}

export interface ServeOptions {
  /** Told about a connection handler's error. Default: a one-line log on stderr. */
  onError?: (err: unknown, conn: Connection) => void;
  /**
   * Closes a connection whose handler waited this many milliseconds in a read with no data (a
   * client that connects and never sends). The read throws ERR_IDLE_TIMEOUT; if the handler lets
   * it through, the connection is closed quietly. Default 0: no limit.
   */
  idleTimeout?: number;
}

/**
 * Listens and runs `handler` in a task of its own for each connection, spawned in the caller's
 * scope. A handler's error is reported (`onError`) and closes that connection, never the server.
 * The connection is closed once its task has settled: the handler has returned or thrown, and
 * every task it spawned has finished. After `server.close()` the accept loop ends quietly;
 * running connections finish normally. If the caller's scope is cancelled, the accept loop ends
 * and closes the listening socket (running connections are cancelled with the scope).
 */
export function* serve(
  options: ListenOptions & ServeOptions,
  handler: (conn: Connection) => Operation<void>,
): Operation<Server> {
  if (typeof handler !== 'function') throw new TypeError(`serve() takes a handler function, not ${describe(handler)}`);
  const onError = options.onError ?? logConnectionError;
  const idleTimeout = options.idleTimeout === undefined ? 0 : checkDelay(options.idleTimeout, 'serve({ idleTimeout })');
  const server = yield* listen(options);
  yield* spawn(function* acceptLoop(): Operation<void> {
    for (;;) {
      let conn: Connection;
      try {
        conn = yield* server.accept();
      } catch (err) {
        if (server.isClosed) return;
        // Cancelled (the caller's scope ended) or accept failed: nothing will accept from the
        // listening socket again, so it is closed here rather than left open.
        server.close();
        throw err;
      }
      conn.idleTimeout = idleTimeout;
      // The handler's generator is the connection's task itself, with no wrapper frame around it:
      // ConnectionEnd closes the connection and reports the error once the task settles. A
      // wrapping generator (try/catch/finally around `yield* call(handler(conn))`) held ~380 B
      // more per connection (its generator object and registers, the Call instruction, the
      // task's frames array): 3.7 MiB of the heap at 10,000 connections.
      let op: OperationSource<void>;
      try {
        op = handler(conn);
        if (!isOperationSource(op)) throw new TypeError(`serve(): the handler returned ${describe(op)}, not an Operation`);
      } catch (err) {
        new ConnectionEnd(conn, onError).end(true, err);
        continue;
      }
      let task: Task<void>;
      try {
        task = yield* spawn(op);
      } catch (err) {
        // Cancelled at this yield (the caller's scope ended): the connection and the listening
        // socket go with it.
        conn.close();
        server.close();
        throw err;
      }
      task.observe(new ConnectionEnd(conn, onError));
    }
  });
  return server;
}

/** Closes a served connection once its task settles, and reports how the handler failed. */
class ConnectionEnd implements Observer {
  constructor(
    private readonly conn: Connection,
    private readonly onError: (err: unknown, conn: Connection) => void,
  ) {}

  onSettled(task: Task<unknown>): void {
    this.end(task.rejected, task.reason);
  }

  end(failed: boolean, err: unknown): void {
    this.conn.close();
    // A cancelled connection (the server's scope ended) is no error; neither is one the idle
    // timeout closed. (`throw undefined` is an error too.)
    if (!failed || err instanceof CancelledError || (err as { code?: unknown } | null | undefined)?.code === 'ERR_IDLE_TIMEOUT') return;
    try {
      this.onError(err, this.conn);
    } catch (thrown) {
      // Observers run inside the driver, which must not be thrown through: an onError that
      // throws goes to the loop's onError.
      this.conn.loop.reportError(thrown);
    }
  }
}

function logConnectionError(err: unknown, conn: Connection): void {
  const what = err instanceof Error ? `${(err as { code?: string }).code ?? err.name}: ${err.message}` : String(err);
  console.error(`coloop serve: connection from ${conn.remoteAddress}:${conn.remotePort} failed: ${what}`);
}
