/**
 * The only importer of the C++ addon, and its typed interface.
 *
 * The contract (native/poller.h is its C++ side):
 * - Hot-path calls (`wait`, `read`, `write`, `accept`, `addTimer`, `cancelTimer`) take and return
 *   numbers. An expected failure (EAGAIN, ECONNRESET, EPIPE, ...) comes back as a negative errno.
 * - A programming error is thrown: wrong argument types → TypeError; negative or huge fds, offsets
 *   or lengths outside the buffer → RangeError; EBADF/ENOTSOCK and calls after `close()` → Error with
 *   `code`, `errno` and `syscall`, as Node's own errors have.
 * - No JS object is created per event: `wait()` writes into typed arrays allocated once.
 * - The addon is context-aware: every worker thread gets its own instance.
 */
import { createRequire } from 'node:module';
import type { SocketApi } from './backend/backend.js';

/** Event bits written beside each token by `Poller.wait`. */
export const READABLE = 1;
export const WRITABLE = 2;
/**
 * The peer hung up (EPOLLHUP / EPOLLRDHUP, EV_EOF). Edge-triggered, it is reported once, usually
 * with READABLE: after it, read until `read` returns 0. A short read no longer means the socket is
 * drained, because the end of stream still waits behind the data and no further edge will come.
 */
export const HANGUP = 4;
/** An error is pending on the socket (EPOLLERR, EV_ERROR). */
export const ERROR = 8;

export interface NativePoller {
  /**
   * `(token, events)` pairs written by `wait`: entry i is at [2i] (token) and [2i + 1] (event bits).
   * Allocated once, `capacity * 2` long.
   */
  readonly events: Int32Array;
  /** Expired timer ids written by `wait`: [0] holds the count, the ids follow from [1]. */
  readonly timers: Int32Array;
  /**
   * Registers `fd` once, edge-triggered, for read and write interest together
   * (EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET, or EVFILT_READ+EVFILT_WRITE with EV_CLEAR).
   * `token` (int32 >= 0) is what `wait` reports for it. Throws a Node-style Error on failure.
   */
  add(fd: number, token: number): void;
  /**
   * Gives a registered `fd` a new token. Re-arming also reports its current readiness again in the
   * next `wait`. Throws a Node-style Error on failure.
   */
  modify(fd: number, token: number): void;
  /**
   * Removes `fd`'s registration. Call it before closing the fd: registered fds keep the process
   * alive, and only `remove` (or `close()` of the poller) stops counting one. Throws a Node-style
   * Error on failure (the fd still stops counting).
   */
  remove(fd: number): void;
  /**
   * One tick's only native call. Collects ready fds and expired timers without allocating.
   * `timeoutMs`: 0 returns at once; > 0 blocks at most that long (rounded up to a whole
   * millisecond, never down to a busy 0, and bounded by the earliest timer); -1 blocks until
   * an event or the earliest timer. Returns the number of (token, events) pairs written, or a
   * negative errno (EINTR comes back as 0). `Infinity` is the same as -1.
   * With kqueue a token can appear twice in one batch (one pair per filter): OR the bits.
   */
  wait(timeoutMs: number): number;
  /**
   * Schedules a timer `delayMs` (>= 0, finite) from now. Returns its id (a small int >= 0).
   * Ids are reused once reported expired (in `timers`) or cancelled: forget an id at that point.
   */
  addTimer(delayMs: number): number;
  /** Cancels a pending timer; returns false when it already expired or was cancelled. */
  cancelTimer(id: number): boolean;
  /** Monotonic clock in milliseconds (fractional), the clock timers use. Works after close(). */
  now(): number;
  /**
   * Turns on read-ahead (see ReadAhead in src/backend/backend.ts): each `wait` then reads, for
   * every readable token whose ask `wants[2 * token]` is > 0, up to that many bytes into the
   * token's read target at offset `wants[2 * token + 1]`. `tokens` (1 ..= 2^24): the wants array
   * covers at least tokens 0 .. tokens - 1. A larger one replaces the old (asks copied over);
   * `results` stays the same. `notRead` is the result of an event nothing was read for. `budget`
   * (1 ..= 64 MiB; 128 KiB until set, kept when omitted): the bytes one wait reads ahead at most;
   * once they are read, its later events are reported unread, and their asks stay in place. The
   * returned `budget` is the one in force.
   */
  enableReadAhead(tokens: number, budget?: number): { wants: Int32Array; results: Int32Array; notRead: number; budget: number };
  /**
   * The Uint8Array reads ahead for `token` go into, held until another is set or the token's fd
   * is removed. Each read checks that the buffer still holds offset + ask bytes (it may have been
   * detached or shrunk), and is skipped otherwise.
   */
  setReadTarget(token: number, buf: Uint8Array): void;
  /** Number of pending timers (0 after close()). */
  readonly timerCount: number;
  /** Releases the epoll/kqueue fd and the libuv handles. Idempotent; other calls then throw. */
  close(): void;
}

export interface NativePollerConstructor {
  /**
   * `onWake` is called from Node's event loop (libuv watches the poller fd and holds a uv_timer for
   * the earliest deadline) when a `wait(0)` would report something. It is the only call from C++
   * into JS, made like any event-loop callback (microtasks run after it; a throw is an uncaught
   * exception). `onWake` should call `wait()`: libuv keeps reporting the poller fd while events are
   * queued in it, and an expired timer wakes it again until collected.
   * The poller keeps Node alive while it has registered fds or pending timers.
   * `capacity` bounds the pairs one `wait` reports (default 1024); the rest come in the next.
   */
  new (onWake: () => void, capacity?: number): NativePoller;
}

/** The timer heap on its own, on a caller-supplied clock: for tests and benchmarks. */
export interface NativeTimerHeap {
  /** Adds a timer with an absolute `deadline`; returns its id. Ties expire in insertion order. */
  schedule(deadline: number): number;
  cancel(id: number): boolean;
  /** Writes ids with deadline <= now into `out` (at most out.length) in order; returns the count. */
  expire(now: number, out: Int32Array): number;
  /** The earliest deadline, or -1 when empty. */
  peek(): number;
  readonly size: number;
}

/**
 * The addon's exports: the poller, the timer heap, and the nonblocking socket calls of the
 * `SocketApi` contract (src/backend/backend.ts documents each), which the addon implements
 * natively. Every fd it creates is O_NONBLOCK|O_CLOEXEC; accepted and connected sockets have
 * TCP_NODELAY on.
 */
export interface NativeBinding extends SocketApi {
  Poller: NativePollerConstructor;
  TimerHeap: new () => NativeTimerHeap;
  /** Bound and listening on return (never a promise); throws a Node-style Error. */
  listen(host: string, port: number, backlog: number, reusePort: boolean): number;
  /**
   * `read`/`write` and `readBuffer`/`writeBuffer` with their numbers passed in `ioBlock` rather
   * than as arguments: set [0] fd, [1] offset, [2] length, call with the buffer (an ArrayBuffer,
   * or a Uint8Array the offset is relative to), and read the result (bytes or a negative errno)
   * from [3]. The same checks and errors. Cheaper: one argument for the addon to fetch instead
   * of four, and no number to create. Absent where the runtime refuses external ArrayBuffers
   * (the block's memory is the addon's).
   */
  readonly ioBlock?: Float64Array;
  readBlock?(buffer: ArrayBuffer | Uint8Array): void;
  writeBlock?(buffer: ArrayBuffer | Uint8Array): void;
}

let cached: NativeBinding | null | undefined;
let loadError: Error | undefined;

/**
 * The addon, or null when it cannot load (then `nativeLoadError()` says why).
 * `COLOOP_ADDON_PATH` (a path to a .node file) loads that build instead of build/Release: the
 * sanitizer run (scripts/test-sanitize.sh) uses it for its instrumented build/sanitize addon.
 */
export function loadNative(): NativeBinding | null {
  if (cached !== undefined) return cached;
  try {
    const require = createRequire(import.meta.url);
    const override = process.env.COLOOP_ADDON_PATH;
    if (override) return (cached = require(override) as NativeBinding);
    const bindings = require('bindings') as (opts: { bindings: string; module_root: string }) => unknown;
    cached = bindings({ bindings: 'coloop', module_root: new URL('..', import.meta.url).pathname }) as NativeBinding;
  } catch (err) {
    loadError = err as Error;
    cached = null;
  }
  return cached;
}

export function nativeLoadError(): Error | undefined {
  loadNative();
  return loadError;
}
