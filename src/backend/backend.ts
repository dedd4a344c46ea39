export interface SocketAddress {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

/**
 * Nonblocking TCP on integer descriptors: the native addon's socket calls, or, on the pure-JS
 * backend, the same calls emulated over node:net on descriptors that exist only in JS. Above this
 * line, src/net/ is one implementation for both backends.
 *
 * Hot-path calls return a number: a byte count or descriptor, or a negative errno (-EAGAIN when the
 * caller must wait for the next READABLE/WRITABLE event of the descriptor's token). Programming
 * errors are thrown (TypeError, RangeError, EBADF as a Node-style Error).
 */
export interface SocketApi {
  /**
   * A listening socket on a numeric `host`. Native: bound and listening on return, or throws a
   * Node-style Error (EADDRINUSE, ...). A promise where binding completes asynchronously (node:net).
   */
  listen(host: string, port: number, backlog: number, reusePort: boolean): number | Promise<number>;
  /**
   * Starts connecting to a numeric `host`. Completion is a WRITABLE (or ERROR/HANGUP) event on the
   * descriptor's token, after which `socketError` is 0 or the negative errno of the failure.
   */
  connect(host: string, port: number): number;
  /** A connected descriptor (TCP_NODELAY on), or -EAGAIN when none is pending, or a negative errno. */
  accept(fd: number): number;
  /** Bytes read into buf[offset, offset + length), 0 at end of stream, or a negative errno. */
  read(fd: number, buf: Uint8Array, offset: number, length: number): number;
  /** Bytes taken from buf[offset, offset + length) (never 0 for length > 0), or a negative errno. */
  write(fd: number, buf: Uint8Array, offset: number, length: number): number;
  /**
   * Native only: `read` and `write` with the bytes named as an ArrayBuffer (not a
   * SharedArrayBuffer) and a range of it; cheaper for the addon to check than a Uint8Array
   * (src/net/byte-io.ts).
   */
  readBuffer?(fd: number, buffer: ArrayBuffer, offset: number, length: number): number;
  writeBuffer?(fd: number, buffer: ArrayBuffer, offset: number, length: number): number;
  /**
   * Gathers buffers[0] from `offset`, then every other buffer whole (at most 64), into one write.
   * Bytes taken (possibly fewer than all), or a negative errno.
   */
  writev(fd: number, buffers: readonly Uint8Array[], offset: number): number;
  /** how: 0 read side, 1 write side (half-close), 2 both. 0 or a negative errno. */
  shutdown(fd: number, how: number): number;
  /** Closes the descriptor (the caller unregisters it first). 0 or a negative errno. */
  close(fd: number): number;
  /** SO_ERROR: 0, or the negative errno a connect (or the connection) failed with. */
  socketError(fd: number): number;
  localAddress(fd: number): SocketAddress;
  remoteAddress(fd: number): SocketAddress;
}

/**
 * Read-ahead (native backend only): `poll` reads for parked readers itself, inside its one call,
 * straight into their buffers, so a reader woken by readiness costs no crossing into the addon of
 * its own.
 *
 * A reader names its buffer once with `setTarget` (it is held until another is set or the
 * descriptor is unregistered), then asks by setting `wants[2 * token]` to the most bytes it takes
 * and `wants[2 * token + 1]` to the offset in the buffer; the next poll reads that token's
 * descriptor, if it is reported readable, and clears the ask. For event i, `results[2i]` is the
 * byte count, 0 at end of stream or a negative errno (`NOT_READ`: nothing was read, the reader
 * reads for itself) and `results[2i + 1]` the bytes asked for (fewer read than asked means the
 * socket is drained). One object for the backend's life: `wants` is replaced when it grows.
 */
export interface ReadAhead {
  wants: Int32Array;
  readonly results: Int32Array;
  setTarget(token: number, buf: Uint8Array): void;
}

/** `results[2i]` of an event nothing was read for. */
export const NOT_READ = -0x80000000;

/**
 * What the loop needs from a backend: timers, and one call per tick that reports everything ready.
 * The native backend (epoll/kqueue in C++) and the pure-JS one (node:net + a JS timer heap) both
 * implement it, so the driver above them is one piece of code.
 */
export interface Backend {
  readonly name: 'native' | 'js';
  /**
   * `(token, events)` pairs written by `poll`: entry i at [2i] and [2i + 1]. Allocated once.
   */
  readonly events: Int32Array;
  /** Expired timer ids written by `poll`: [0] holds the count, the ids follow. Allocated once. */
  readonly expired: Int32Array;
  readonly sockets: SocketApi;
  /** Reads done by `poll` for parked readers, or null when this backend does not do them. */
  readonly readAhead: ReadAhead | null;
  /**
   * Watches `fd` from now on, edge-triggered, for reading and writing together: `poll` reports
   * `(token, bits)` (READABLE 1, WRITABLE 2, HANGUP 4, ERROR 8 — see src/native.ts) each time
   * the descriptor becomes ready again. Once per descriptor; no call per wait.
   */
  register(fd: number, token: number): void;
  /** Stops watching `fd` (before it is closed). */
  unregister(fd: number): void;
  /** Monotonic milliseconds: the clock timers run on. */
  now(): number;
  /** Schedules a timer `delayMs` from now; returns its id, reported by `poll` when it expires. */
  addTimer(delayMs: number): number;
  cancelTimer(id: number): boolean;
  /** One tick's only backend call: collects ready events and expired timers without blocking. */
  poll(): number;
  /**
   * Called when the loop goes idle (end of a tick) and after timers change outside a tick: make
   * sure `onWake` comes at the earliest deadline, and that no cancelled timer keeps Node alive.
   */
  arm(): void;
  /** Releases everything; the backend stops waking the loop. */
  close(): void;
}

/** Creates a backend that calls `onWake` (from Node's loop) when `poll` has something to report. */
export type BackendFactory = (onWake: () => void) => Backend;
