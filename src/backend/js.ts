import { performance } from 'node:perf_hooks';
import { BackendTimers } from '../timers.js';
import type { Backend } from './backend.js';
import { JsSockets } from './js-sockets.js';

const EVENT_CAPACITY = 1024;

/**
 * The pure-JS backend: a JS timer heap behind one Node `setTimeout` armed for the earliest deadline,
 * and sockets emulated over node:net on descriptors that exist only in JS (./js-sockets.ts).
 * It serves where the addon cannot load and is the baseline the native backend is measured against.
 */
export class JsBackend implements Backend {
  readonly name = 'js' as const;
  readonly events = new Int32Array(EVENT_CAPACITY * 2);
  private readonly timers = new BackendTimers();
  readonly expired = this.timers.expired;
  private timer: NodeJS.Timeout | null = null;
  private armedFor = Infinity;
  private closed = false;
  /** The emulated socket calls; their events are gathered there and reported by `poll`. */
  readonly sockets: JsSockets;
  /** node:net delivers data itself: nothing to read ahead. */
  readonly readAhead = null;

  constructor(private readonly onWake: () => void) {
    this.sockets = new JsSockets(this.socketWake);
  }

  register(fd: number, token: number): void {
    this.sockets.register(fd, token);
  }

  unregister(fd: number): void {
    this.sockets.unregister(fd);
  }

  now(): number {
    return this.timers.now();
  }

  addTimer(delayMs: number): number {
    // No Node timer here: a tick polls again before it ends, and `arm` runs when it does.
    return this.timers.add(delayMs);
  }

  cancelTimer(id: number): boolean {
    return this.timers.cancel(id);
  }

  poll(): number {
    this.timers.collect(performance.now());
    return this.sockets.collect(this.events);
  }

  arm(): void {
    const next = this.timers.earliest();
    if (next < 0) this.disarm();
    else if (this.timer === null || next < this.armedFor) this.armFor(next);
  }

  close(): void {
    this.closed = true;
    this.disarm();
    this.sockets.closeAll();
  }

  /** Socket events are waiting (coalesced by JsSockets: at most one call per turn of Node's loop). */
  private readonly socketWake = (): void => {
    if (!this.closed) this.onWake();
  };

  private readonly fire = (): void => {
    this.timer = null;
    this.armedFor = Infinity;
    if (!this.closed) this.onWake();
  };

  private armFor(deadline: number): void {
    if (this.closed) return;
    if (this.timer !== null) clearTimeout(this.timer);
    // Node's timers have whole-millisecond resolution: round up so a timer never fires early.
    this.timer = setTimeout(this.fire, Math.max(0, Math.ceil(deadline - performance.now())));
    this.armedFor = deadline;
  }

  private disarm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.armedFor = Infinity;
  }
}
