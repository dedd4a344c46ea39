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
