import { performance } from 'node:perf_hooks';
import { JsBackend } from './backend/js.js';
import { NativeBackend } from './backend/native.js';
import type { Backend } from './backend/backend.js';
import { describe } from './errors.js';
import { loadNative, nativeLoadError } from './native.js';
import { isOperationSource, type OperationSource } from './operation.js';
import { checkDelay } from './primitives.js';
import { RunQueue, type Runnable } from './run-queue.js';
import { Task, type ResumeMode } from './task.js';

export type BackendName = 'native' | 'js';

export interface LoopOptions {
  /** Which backend polls. Default: `COLOOP_BACKEND` if set, else native when the addon loads. */
  backend?: BackendName;
  /**
   * Receives errors nobody else can: a `callSoon`/`callLater` callback that threw, a root task
   * that failed with nobody awaiting it. Default: rethrown from Node's loop, like a throwing
   * `setImmediate` callback (an uncaught exception).
   */
  onError?: (err: unknown) => void;
}

/** Expired timers wake one of these: a sleeping task, or a `callLater` handle. */
export interface TimerWaiter {
  onTimer(): void;
}

/** A registered descriptor's owner: told the event bits each time `poll` reports its token. */
export interface IoHandler {
  /** `event`: the index of the event in this poll, for what the backend read ahead for it. */
  onIo(bits: number, event: number): void;
}

/**
 * How long one turn of Node's loop may keep running batches before yielding back to it
 * (setImmediate), so that fs, node:net and Node's timers beside coloop are never starved by a busy
 * coroutine workload. Counted from the end of the turn's first batch, and checked every
 * BATCHES_PER_CHECK batches: reading the clock every batch would cost more than a small batch.
 * (A chain of `await`s never yields to Node at all.)
 */
const TURN_BUDGET_MS = 1;
const BATCHES_PER_CHECK = 64;

/**
 * The event loop. One tick:
 *   1. poll: one backend call collects ready events and expired timers (never blocks: Node's own
 *      loop does the blocking, watching the poller's fd and the earliest deadline);
 *   2. reschedule: each expired timer and ready token puts its waiter on the run queue;
 *   3. run one batch: exactly the runnables queued when the batch began; what they wake runs in
 *      the next batch, so a busy task never starves I/O and resumption never recurses.
 * Ticks repeat while the run queue is non-empty, up to BATCHES_PER_TURN per turn of Node's loop.
 */
export class Loop {
  readonly backend: Backend;
  private readonly queue = new RunQueue();
  private readonly timerWaiters: (TimerWaiter | undefined)[] = [];
  /** Scratch for collect(): the waiters of one batch of expired timers. */
  private readonly firing: (TimerWaiter | undefined)[] = [];
  private readonly roots = new Set<Task<unknown>>();
  private readonly onError: (err: unknown) => void;
  private inTick = false;
  private immediate: NodeJS.Immediate | null = null;
  private microtaskPending = false;
  /** Handlers by token; freed tokens are reused. */
  private readonly ioHandlers: (IoHandler | undefined)[] = [];
  private readonly freeTokens: number[] = [];
  /** Timers pending and descriptors registered: while both are 0, a batch has nothing to poll for. */
  private pendingTimers = 0;
  private registered = 0;
  private backendWoke = false;
  private closing: Promise<void> | null = null;
  private finishClose: (() => void) | null = null;
  private closed = false;

  constructor(options: LoopOptions = {}) {
    this.backend = createBackend(options.backend, this.onWake);
    this.onError = options.onError ?? rethrowLater;
  }

  /** Monotonic time in milliseconds, on the clock timers use. */
  time(): number {
    return this.backend.now();
  }

  /** Runs `fn(...args)` in the next batch. */
  callSoon<A extends unknown[]>(fn: (...args: A) => void, ...args: A): Handle {
    this.checkOpen('callSoon');
    if (typeof fn !== 'function') throw new TypeError(`callSoon() takes a function, not ${describe(fn)}`);
    const handle = new Handle(this, fn as (...args: unknown[]) => void, args);
    this.enqueue(handle);
    return handle;
  }

  /** Runs `fn(...args)` once `ms` milliseconds have passed. */
  callLater<A extends unknown[]>(ms: number, fn: (...args: A) => void, ...args: A): Handle {
    this.checkOpen('callLater');
    checkDelay(ms, 'callLater');
    if (typeof fn !== 'function') throw new TypeError(`callLater() takes a function, not ${describe(fn)}`);
    const handle = new Handle(this, fn as (...args: unknown[]) => void, args);
    handle.timerId = this.addTimer(ms, handle);
    return handle;
  }

  /** Starts `source` as a root task of this loop (no parent). */
  spawn<T>(source: OperationSource<T>): Task<T> {
    this.checkOpen('spawn');
    if (!isOperationSource(source)) {
      throw new TypeError(`spawn() takes an Operation or a function returning one, not ${describe(source)}`);
    }
    const task = new Task<T>(this, source, null);
    this.roots.add(task);
    task.schedule();
    return task;
  }

  /** Runs `main` as a root task and resolves with its result once it and its children settle. */
  runUntilComplete<T>(main: OperationSource<T>): Promise<T> {
    const task = this.spawn(main);
    return new Promise<T>((resolve, reject) => task.then(resolve, reject));
  }

  /**
   * Cancels every task still running, lets their cleanup (`finally`, even asynchronous) run, then
   * releases the backend. Pending `callSoon`/`callLater` callbacks are dropped. Idempotent.
   */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.closing = new Promise<void>((resolve) => {
      this.finishClose = resolve;
    });
    for (const task of this.roots) task.cancel('loop closed');
    this.maybeFinishClose();
    return this.closing;
  }

  // ---- used by tasks and instructions ---------------------------------------------------------

  enqueue(item: Runnable): void {
    this.queue.push(item);
    // Woken from outside a tick (a promise settled, code called spawn): tick in a microtask, as
    // the continuation of an `await` would run. Work left over when a turn's batch budget runs
    // out goes through setImmediate instead, which lets Node's own I/O and timers in.
    if (!this.inTick && !this.microtaskPending && !this.closed) {
      this.microtaskPending = true;
      queueMicrotask(this.tickFromMicrotask);
    }
  }

  /**
   * Resumes `task` from a callback outside the loop (a promise settled) and runs what is queued
   * right here, as the continuation of an `await` runs, instead of one more microtask later. It
   * is a batch without the backend poll (the backend wakes the loop itself): when 10,000 tasks
   * wait on one promise, its 10,000 callbacks each run one step, and no callback waits behind a
   * whole tick's worth of I/O.
   */
  resumeFromCallback(task: Task<unknown>, mode: ResumeMode, value: unknown): void {
    if (this.inTick || this.closed) {
      task.resume(mode, value);
      return;
    }
    const queue = this.queue;
    // Holding inTick keeps enqueue from scheduling a microtask tick for what runs right here.
    this.inTick = true;
    try {
      task.resume(mode, value);
      let n = queue.length;
      while (n-- > 0) queue.shift().runStep();
    } finally {
      this.inTick = false;
    }
    if (this.closed) return;
    if (queue.length > 0) {
      if (!this.microtaskPending) {
        this.microtaskPending = true;
        queueMicrotask(this.tickFromMicrotask);
      }
    } else {
      this.backend.arm();
    }
  }

  addTimer(ms: number, waiter: TimerWaiter): number {
    const id = this.backend.addTimer(ms);
    this.timerWaiters[id] = waiter;
    this.pendingTimers++;
    if (!this.inTick) this.backend.arm();
    return id;
  }

  cancelTimer(id: number): void {
    if (id < 0 || this.timerWaiters[id] === undefined) return;
    this.timerWaiters[id] = undefined;
    this.pendingTimers--;
    this.backend.cancelTimer(id);
    if (!this.inTick) this.backend.arm();
  }

  /** Watches `fd` (edge-triggered, both directions) and routes its events to `handler`. */
  register(fd: number, handler: IoHandler): number {
    this.checkOpen('register');
    const token = this.freeTokens.length > 0 ? this.freeTokens.pop()! : this.ioHandlers.length;
    this.backend.register(fd, token);
    this.ioHandlers[token] = handler;
    this.registered++;
    return token;
  }

  /**
   * Stops watching `fd`. Its token is reused later; an event already collected for it is dropped,
   * and one reported to a later owner of the token is only a spurious wake-up, which every handler
   * tolerates (it retries its call and meets EAGAIN).
   */
  unregister(fd: number, token: number): void {
    if (this.ioHandlers[token] === undefined) return;
    this.ioHandlers[token] = undefined;
    this.freeTokens.push(token);
    this.registered--;
    if (!this.closed) this.backend.unregister(fd);
  }

  rootSettled(task: Task<unknown>, unhandledFailure: boolean): void {
    this.roots.delete(task);
    if (unhandledFailure) this.reportError(task.reason);
    if (this.closing !== null) this.maybeFinishClose();
  }

  reportError(err: unknown): void {
    try {
      this.onError(err);
    } catch (thrown) {
      rethrowLater(thrown);
    }
  }

  /** A second error met while a task was already failing with `primary`: reported, not dropped. */
  reportSuppressed(err: unknown, primary: unknown): void {
    const message = err instanceof Error ? err.stack ?? err.message : String(err);
    const first = primary instanceof Error ? primary.message : String(primary);
    process.emitWarning(`coloop: an error was raised while a task was already failing with "${first}": ${message}`, {
      type: 'SuppressedError',
    });
  }

  // ---- the tick -----------------------------------------------------------------------------------

  private readonly tickFromMicrotask = (): void => {
    this.microtaskPending = false;
    this.tick();
  };

  private readonly tickFromImmediate = (): void => {
    this.immediate = null;
    this.tick();
  };

  /** Woken by the backend (Node's loop saw the poller fd or a deadline): the tick must poll. */
  private readonly onWake = (): void => {
    this.backendWoke = true;
    this.tick();
  };

  private readonly tick = (): void => {
    if (this.closed || this.inTick) return;
    this.inTick = true;
    const queue = this.queue;
    let busy = true;
    // The budget counts from the end of the first batch: most wakes run one batch and stop, and
    // need no clock read (each costs ~200 user-space instructions: performance.now() checks its
    // receiver with a hasOwnProperty lookup, then calls into Node for the time).
    let deadline = Infinity;
    try {
      for (let batch = 1; !this.closed; batch++) {
        this.collect();
        let n = queue.length;
        if (n === 0) {
          busy = false;
          break;
        }
        while (n-- > 0) queue.shift().runStep();
        // Nothing was woken and no timer can be due: polling again would only hear "nothing"
        // (one system call per wake saved on a busy server). Node's loop wakes us for what comes.
        if (queue.length === 0 && this.pendingTimers === 0) {
          busy = false;
          break;
        }
        if (batch === 1) deadline = performance.now() + TURN_BUDGET_MS;
        else if (batch % BATCHES_PER_CHECK === 0 && performance.now() >= deadline) break;
      }
    } finally {
      this.inTick = false;
    }
    if (this.closed) return;
    // Out of budget while still busy: continue after Node's loop had a turn. The next tick polls
    // again, so a timer that came due meanwhile (a sleep(0)) is not left waiting for a Node timer.
    if (busy) {
      if (this.immediate === null) this.immediate = setImmediate(this.tickFromImmediate);
    } else {
      this.backend.arm();
    }
  };

  /**
   * Steps 1 and 2: the one backend call, then every ready descriptor's and expired timer's waiter
   * onto the run queue. Handlers only record readiness and wake waiters here; no user code runs.
   */
  private collect(): void {
    // Nothing registered and no timer pending: the backend has nothing to report, and the
    // crossing would cost more than the batch it precedes (task switches, spawn + join).
    if (this.pendingTimers === 0 && this.registered === 0 && !this.backendWoke) return;
    this.backendWoke = false;
    const ready = this.backend.poll();
    if (ready > 0) {
      const events = this.backend.events;
      const handlers = this.ioHandlers;
      for (let i = 0; i < ready; i++) handlers[events[2 * i]!]?.onIo(events[2 * i + 1]!, i);
    }
    const expired = this.backend.expired;
    const count = expired[0]!;
    if (count === 0) return;
    // Two passes: every expired id is released before any waiter runs. A waiter may schedule a
    // timer at once (a lazy idle timer re-arming, accept's back-off), and the heap may hand it an
    // id that expired in this same batch: a single pass would then give that later entry the new
    // waiter and lose the old one (a sleep that never woke).
    const waiters = this.timerWaiters;
    const firing = this.firing;
    let n = 0;
    for (let i = 1; i <= count; i++) {
      const id = expired[i]!;
      const waiter = waiters[id];
      if (waiter === undefined) continue;
      waiters[id] = undefined;
      this.pendingTimers--;
      firing[n++] = waiter;
    }
    for (let i = 0; i < n; i++) {
      const waiter = firing[i]!;
      firing[i] = undefined;
      waiter.onTimer();
    }
  }

  private maybeFinishClose(): void {
    if (this.closed || this.roots.size > 0 || this.finishClose === null) return;
    this.closed = true;
    if (this.immediate !== null) clearImmediate(this.immediate);
    this.immediate = null;
    this.backend.close();
    this.finishClose();
  }

  private checkOpen(what: string): void {
    if (this.closing !== null) throw new Error(`${what}() on a closed loop`);
  }
}

/** A callback scheduled with `callSoon` or `callLater`. */
export class Handle implements Runnable, TimerWaiter {
  timerId = -1;
  private cancelled = false;

  constructor(
    private readonly loop: Loop,
    private readonly fn: (...args: unknown[]) => void,
    private readonly args: unknown[],
  ) {}

  /** Prevents the callback from running; harmless after it ran. */
  cancel(): void {
    this.cancelled = true;
    if (this.timerId >= 0) this.loop.cancelTimer(this.timerId);
    this.timerId = -1;
  }

  runStep(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    try {
      this.fn(...this.args);
    } catch (err) {
      this.loop.reportError(err);
    }
  }

  onTimer(): void {
    this.timerId = -1;
    if (!this.cancelled) this.loop.enqueue(this);
  }
}

let warnedFallback = false;

function createBackend(requested: BackendName | undefined, onWake: () => void): Backend {
  const fromEnv = process.env.COLOOP_BACKEND;
  const name = requested ?? (fromEnv === undefined || fromEnv === '' ? undefined : fromEnv);
  if (name !== undefined && name !== 'native' && name !== 'js') {
    throw new RangeError(`unknown coloop backend ${JSON.stringify(name)} (expected "native" or "js")`);
  }
  if (name === 'js') return new JsBackend(onWake);
  const binding = loadNative();
  if (binding !== null) return new NativeBackend(binding, onWake);
  if (name === 'native') {
    throw new Error('the coloop native addon could not be loaded (run `npm run build:native`)', { cause: nativeLoadError() });
  }
  if (!warnedFallback) {
    warnedFallback = true;
    const reason = nativeLoadError()?.message.split('\n')[0] ?? 'unknown error';
    process.emitWarning(`coloop: native addon unavailable, using the pure-JS backend (${reason}; \`npm run build:native\` builds it)`);
  }
  return new JsBackend(onWake);
}

function rethrowLater(err: unknown): void {
  process.nextTick(() => {
    throw err;
  });
}

/**
 * Runs `main` on a new loop and resolves with its result once it and every task it started have
 * settled; the loop is then closed.
 */
export async function run<T>(main: OperationSource<T>, options: LoopOptions = {}): Promise<T> {
  const loop = new Loop(options);
  try {
    return await loop.runUntilComplete(main);
  } finally {
    await loop.close();
  }
}
