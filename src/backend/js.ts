import { performance } from 'node:perf_hooks';
import { TimerHeap } from '../timers.js';
import type { Backend } from './backend.js';
import { JsSockets } from './js-sockets.js';

const EVENT_CAPACITY = 1024;
const TIMER_CAPACITY = 4096;

/**
 * The pure-JS backend: a JS timer heap behind one Node `setTimeout` armed for the earliest deadline,
 * and sockets emulated over node:net on descriptors that exist only in JS (./js-sockets.ts).
 * It serves where the addon cannot load and is the baseline the native backend is measured against.
 */
export class JsBackend implements Backend {
  readonly name = 'js' as const;
  readonly events = new Int32Array(EVENT_CAPACITY * 2);
  readonly expired = new Int32Array(TIMER_CAPACITY + 1);
  private readonly heap = new TimerHeap();
  private timer: NodeJS.Timeout | null = null;
  private armedFor = Infinity;
  private closed = false;
  /** The emulated socket calls; their events are gathered there and reported by `poll`. */
  readonly sockets: JsSockets;

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
    return performance.now();
  }

  addTimer(delayMs: number): number {
    // No Node timer here: a tick polls again before it ends, and `arm` runs when it does.
    return this.heap.schedule(performance.now() + delayMs);
  }

  cancelTimer(id: number): boolean {
    return this.heap.cancel(id);
  }

  poll(): number {
    const expired = this.expired;
    expired[0] = this.heap.size === 0 ? 0 : this.heap.expire(performance.now(), expired, 1);
    return this.sockets.collect(this.events);
  }

  arm(): void {
    const next = this.heap.peek();
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
