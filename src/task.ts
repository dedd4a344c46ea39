import { CancelledError, describe } from './errors.js';
import { Instruction, type Operation, type OperationSource } from './operation.js';
import type { Runnable } from './run-queue.js';
import type { Loop } from './loop.js';

export type TaskState = 'pending' | 'fulfilled' | 'rejected' | 'cancelled';

/** How a parked task is resumed: with a value (`next`) or with an error thrown in (`throw`). */
export const NEXT = 0;
export const THROW = 1;
// This module's own uses read non-exported copies: an exported binding is read through a cell and
// checked at every use, where a module's own const is folded into the optimized code.
const NEXT_ = NEXT;
const THROW_ = THROW;
/** Internal: the step first tries again the instruction in `resumeValue` (see Task.retry). */
const RETRY = 2;
export type ResumeMode = typeof NEXT_ | typeof THROW_;

/** Told when a task settles. Joiners, `all`/`race` and the promise side of a task are observers. */
export interface Observer {
  onSettled(task: Task<unknown>): void;
}

/** Life of a task. BODY: the generator is live. CHILDREN: it returned or threw, children remain. */
const CREATED = 0;
const BODY = 1;
const CHILDREN = 2;
const SETTLED = 3;

/**
 * Socket reads and writes one step may complete without waiting (data already buffered, a write
 * the kernel takes whole) before the task goes to the back of the run queue. A task whose peer
 * keeps up never parks, so without a limit it would hold the batch, and every other task, for as
 * long as the data flowed. Only data operations count: a spawn, an accept, a call() or a join of
 * a finished task is the task's own work, and an accept loop drains its backlog in one go, as
 * libuv's does.
 */
const SOCKET_OPS_PER_STEP = 64;

/**
 * A running coroutine. It is an Operation (`yield* task` joins it) and a PromiseLike (`await task`
 * from async code).
 *
 * Structure (trio's nursery, asyncio's TaskGroup): a task spawned inside another is its child. A
 * task whose body has finished settles only once all its children have. The first failure, of its
 * body or of a child nobody was joining, is the task's result; it cancels the rest. Cancelling a
 * task cancels its children.
 */
export class Task<T = unknown> extends Instruction<T> implements PromiseLike<T>, Runnable, Observer {
  readonly loop: Loop;
  readonly parent: Task<unknown> | null;

  /** The resume slot: set by whoever wakes the task, read by the next `runStep`. */
  resumeMode: ResumeMode = NEXT_;
  resumeValue: unknown = undefined;
  /** On the run queue now. A task is queued at most once: every wait ends in exactly one resume. */
  queued = false;
  /** The instruction the task is parked on, or null when running, queued or done. */
  parkedOn: Instruction<unknown> | null = null;
  /** Bumped on every park, so a late wake-up for an earlier wait is recognised and dropped. */
  parkGen = 0;
  /** Per-wait scratch slot for the instruction parked on (a timer id, for `sleep`). */
  waitId = -1;
  /** Socket operations this step may still complete at once (SOCKET_OPS_PER_STEP); ops spend it. */
  socketBudget = 0;

  private phase = CREATED;
  private source: OperationSource<T> | null;
  /** The frame running now: the body's iterator, or the innermost `call`'s. */
  private iterator: Iterator<unknown, unknown, unknown> | null = null;
  /** Whether `iterator.next` is the generators' own `next` (see generatorNext). */
  private generatorFrame = false;
  /** The frames suspended below it by `call`, innermost last (null until the first call). */
  private frames: Iterator<unknown, unknown, unknown>[] | null = null;
  /** Children as an intrusive list: O(1) to add and remove, no Set per parent. */
  private firstChild: Task<unknown> | null = null;
  private prevSibling: Task<unknown> | null = null;
  private nextSibling: Task<unknown> | null = null;
  private childCount = 0;
  /** One observer, or several in an array (every served connection has exactly one). */
  private observers: Observer | Observer[] | null = null;

  private failed = false;
  /** The body's return value, or once `failed` the error. */
  private outcome: unknown = undefined;
  /** cancel() was called (or a failure interrupted the body): one CancelledError is delivered. */
  private cancelRequested = false;
  /** An interruption waiting for the task's next yield (it was running or queued when it came). */
  private pendingInterrupt: unknown = null;

  /** Made by the first then(): most tasks are never awaited as promises. */
  private deferred: Deferred | null = null;

  constructor(loop: Loop, source: OperationSource<T>, parent: Task<unknown> | null) {
    super();
    this.loop = loop;
    this.source = source;
    this.parent = parent;
    if (parent !== null) parent.addChild(this);
  }

  get state(): TaskState {
    if (this.phase !== SETTLED) return 'pending';
    if (!this.failed) return 'fulfilled';
    return this.outcome instanceof CancelledError ? 'cancelled' : 'rejected';
  }

  /**
   * Requests cancellation: a `CancelledError` is thrown into the task at its suspension point (at
   * once if it is parked, at its next yield if it is running or queued; a task that never started
   * never runs its body). Its children are cancelled too. Idempotent; a settled task ignores it.
   */
  cancel(reason?: string): void {
    if (this.phase === SETTLED) return;
    // Iterative, not recursive: a chain of 10,000 nested tasks must not overflow the stack.
    const stack: Task<unknown>[] = [this];
    while (stack.length > 0) {
      const task = stack.pop()!;
      if (task.phase === SETTLED) continue;
      if (!task.cancelRequested) {
        task.cancelRequested = true;
        task.interrupt(new CancelledError(reason));
      }
      for (let child = task.firstChild; child !== null; child = child.nextSibling) stack.push(child);
    }
  }

  then<R1 = T, R2 = never>(
    onFulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onRejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    let deferred = this.deferred;
    if (deferred === null) {
      deferred = this.deferred = new Deferred();
      if (this.phase === SETTLED) this.settlePromise();
    }
    return (deferred.promise as Promise<T>).then(onFulfilled, onRejected);
  }

  // ---- joining: a Task is the instruction `yield* task` yields -------------------------------

  start(joiner: Task<unknown>): boolean {
    if (this.phase === SETTLED) {
      joiner.resumeMode = this.failed ? THROW_ : NEXT_;
      joiner.resumeValue = this.outcome;
      return true;
    }
    if (joiner === this) {
      joiner.resumeMode = THROW_;
      joiner.resumeValue = new Error('a task cannot join itself: it would wait forever');
      return true;
    }
    this.observe(joiner);
    return false;
  }

  override abort(joiner: Task<unknown>): void {
    this.unobserve(joiner);
  }

  /** As an observer: a task this one joined has settled. */
  onSettled(target: Task<unknown>): void {
    this.resume(target.failed ? THROW_ : NEXT_, target.outcome);
  }

  /** Registers an observer, told once when the task settles. Observing a failure handles it. */
  observe(observer: Observer): void {
    // One observer is held as itself, two or more in an array: an array of one cost 56 B per
    // served connection (each has one observer), and `[]` then push() 168 B.
    const list = this.observers;
    if (list === null) this.observers = observer;
    else if (Array.isArray(list)) list.push(observer);
    else this.observers = [list, observer];
  }

  unobserve(observer: Observer): void {
    const list = this.observers;
    if (list === observer) {
      this.observers = null;
    } else if (Array.isArray(list)) {
      const i = list.indexOf(observer);
      if (i >= 0) list.splice(i, 1);
    }
  }

  /** The settled result, for observers: the value, or throws the error. */
  result(): T {
    if (this.phase !== SETTLED) throw new Error('task has not settled');
    if (this.failed) throw this.outcome;
    return this.outcome as T;
  }

  get settled(): boolean {
    return this.phase === SETTLED;
  }

  get rejected(): boolean {
    return this.phase === SETTLED && this.failed;
  }

  /** The error a failed task settled with; undefined otherwise. */
  get reason(): unknown {
    return this.failed ? this.outcome : undefined;
  }

  // ---- the driver side ------------------------------------------------------------------------

  /** Wakes a parked task: it runs in the next batch with `value` sent or thrown in. */
  resume(mode: ResumeMode, value: unknown): void {
    if (this.queued || this.phase !== BODY) {
      throw new Error(`coloop internal error: resume of a task that is ${this.queued ? 'already queued' : 'not parked'}`);
    }
    this.parkedOn = null;
    this.resumeMode = mode;
    this.resumeValue = value;
    this.queued = true;
    this.loop.enqueue(this);
  }

  /**
   * Wakes a parked task to try `op` again at the start of its next step, and to be resumed with
   * that attempt's outcome (or parked on `op` again, if it still has none). A socket read woken by
   * an edge uses it, so that the bytes land in the reader's buffer just before the task runs on
   * them, rather than when the event is dispatched, a whole batch earlier.
   */
  retry(op: Instruction<unknown>): void {
    if (this.queued || this.phase !== BODY) {
      throw new Error(`coloop internal error: retry of a task that is ${this.queued ? 'already queued' : 'not parked'}`);
    }
    this.parkedOn = null;
    this.resumeMode = RETRY as ResumeMode;
    this.resumeValue = op;
    this.queued = true;
    this.loop.enqueue(this);
  }

  /** Puts a new task on the run queue for its first step. */
  schedule(): void {
    this.queued = true;
    this.loop.enqueue(this);
  }

  /** An interruption (a cancel, say) is waiting for the task's next yield. */
  get interrupted(): boolean {
    return this.pendingInterrupt !== null;
  }

  /** Runs the task until it parks, returns or throws. Called only by the loop's batch. */
  runStep(): void {
    running = this;
    try {
      this.step();
    } finally {
      running = null;
    }
  }

  private step(): void {
    this.queued = false;
    if (this.phase === CHILDREN) {
      this.settle();
      return;
    }
    let mode: ResumeMode = this.resumeMode;
    let value = this.resumeValue;
    this.resumeValue = undefined;
    if (this.phase === CREATED) {
      this.phase = BODY;
      if (this.pendingInterrupt !== null) {
        // Cancelled before its first step: the body never runs (asyncio's create_task + cancel).
        this.finishBody(false, this.takeInterrupt());
        return;
      }
      try {
        this.setFrame(toIterator(this.source!));
      } catch (err) {
        this.finishBody(false, err);
        return;
      }
      this.source = null;
    }
    this.socketBudget = SOCKET_OPS_PER_STEP;
    if ((mode as number) === RETRY) {
      const op = value as Instruction<unknown>;
      if (this.pendingInterrupt !== null) {
        // Nothing was taken from the op yet: the cancel goes in at once, and loses nothing.
        mode = THROW_;
        value = this.takeInterrupt();
      } else {
        this.parkGen++;
        this.parkedOn = op;
        if (!op.start(this)) return;
        this.parkedOn = null;
        mode = this.resumeMode;
        value = this.resumeValue;
        this.resumeValue = undefined;
      }
    }
    for (;;) {
      const iterator = this.iterator!;
      let step: IteratorResult<unknown, unknown>;
      try {
        if (mode === NEXT_) step = this.generatorFrame ? generatorNext.call(iterator, value) : iterator.next(value);
        else if (iterator.throw !== undefined) step = iterator.throw(value);
        else throw value;
      } catch (err) {
        if (this.frames !== null && this.frames.length > 0) {
          // A `call` frame threw: the error surfaces in its caller, at the `yield* call(...)`.
          this.setFrame(this.frames.pop()!);
          mode = THROW_;
          value = err;
          continue;
        }
        this.finishBody(false, err);
        return;
      }
      if (step.done) {
        if (this.frames !== null && this.frames.length > 0) {
          this.setFrame(this.frames.pop()!);
          mode = NEXT_;
          value = step.value;
          continue;
        }
        this.finishBody(true, step.value as T);
        return;
      }
      const instruction = step.value;
      if (instruction === PARK_MARK) {
        // An op tried just now, inside this step's yield*, and parked the task on itself
        // (parkIn): no second attempt, and no megamorphic `start` load, as the path below makes.
        if (this.pendingInterrupt === null) return;
        // Not reached (an op parks only when no interrupt waits), but should one have come, it
        // goes in now, as for any instruction, and the op lets go of the task.
        this.parkedOn!.abort(this);
        this.parkedOn = null;
        mode = THROW_;
        value = this.takeInterrupt();
        continue;
      }
      if (this.pendingInterrupt !== null) {
        mode = THROW_;
        value = this.takeInterrupt();
        continue;
      }
      if (!(instruction instanceof Instruction)) {
        mode = THROW_;
        value = new TypeError(
          `a task yielded ${describe(instruction)}; only coloop operations may be yielded (use yield*, not yield)`,
        );
        continue;
      }
      this.parkGen++;
      this.parkedOn = instruction;
      if (instruction.start(this)) {
        this.parkedOn = null;
        if (this.socketBudget <= 0) {
          // The result stays in the resume slot for the next batch; a cancel meanwhile is taken
          // at the next yield, as for any task that is queued rather than parked.
          this.schedule();
          return;
        }
        mode = this.resumeMode;
        value = this.resumeValue;
        this.resumeValue = undefined;
        continue;
      }
      return;
    }
  }

  /**
   * Runs `iterator` as a new innermost frame (for `call`): the driver, not V8's `yield*`, now links
   * it to its caller, so resuming it costs O(1) however deep the calls are nested.
   */
  pushFrame(iterator: Iterator<unknown, unknown, unknown>): void {
    // A literal of one: `[]` then push() would reserve room for 17 frames, and most tasks that
    // call() at all hold exactly one.
    if (this.frames === null) this.frames = [this.iterator!];
    else this.frames.push(this.iterator!);
    this.setFrame(iterator);
  }

  private setFrame(iterator: Iterator<unknown, unknown, unknown>): void {
    this.iterator = iterator;
    this.generatorFrame = iterator.next === generatorNext;
  }

  /**
   * Parks the task on `op`, from inside the op's `next()` in this task's running step, after its
   * attempt said EAGAIN; returns what `next()` yields for it. The op is then the task's wait
   * without the driver touching it again, and the yielded result is one constant: storing the
   * op in a shared result or a module variable instead cost a write barrier per wait (~50
   * instructions each, callgrind) while the connection's objects are still in V8's young
   * generation, which at zero allocation per message is for as long as they live. @internal
   */
  parkIn(op: ParkingOp): IteratorYieldResult<unknown> {
    this.parkGen++;
    this.parkedOn = op;
    op.park(this);
    return PARKED;
  }

  /** As a timer waiter: a `sleep` expired. */
  onTimer(): void {
    this.waitId = -1;
    this.resume(NEXT_, undefined);
  }

  // ---- structure --------------------------------------------------------------------------------

  private finishBody(ok: boolean, outcome: unknown): void {
    this.iterator = null;
    this.phase = CHILDREN;
    // A child that failed while the body ran on has failed the task already: its error stands.
    if (ok) {
      if (!this.failed) this.outcome = outcome;
    } else {
      this.recordFailure(outcome);
      this.cancelChildren();
    }
    if (this.childCount === 0) this.settle();
  }

  /** The first real error wins; a CancelledError only stands while there is no other. */
  private recordFailure(err: unknown): void {
    if (!this.failed) {
      this.failed = true;
      this.outcome = err;
    } else if (this.outcome instanceof CancelledError && !(err instanceof CancelledError)) {
      this.outcome = err;
    } else if (!(err instanceof CancelledError) && err !== this.outcome) {
      this.loop.reportSuppressed(err, this.outcome);
    }
  }

  private cancelChildren(): void {
    for (let child = this.firstChild; child !== null; child = child.nextSibling) child.cancel();
  }

  private addChild(child: Task<unknown>): void {
    const first = this.firstChild;
    child.nextSibling = first;
    if (first !== null) first.prevSibling = child;
    this.firstChild = child;
    this.childCount++;
  }

  private removeChild(child: Task<unknown>): void {
    const { prevSibling: prev, nextSibling: next } = child;
    if (prev !== null) prev.nextSibling = next;
    else this.firstChild = next;
    if (next !== null) next.prevSibling = prev;
    child.prevSibling = child.nextSibling = null;
    this.childCount--;
  }

  /** A child settled; an unobserved failure fails this task and cancels its body and siblings. */
  private childSettled(child: Task<unknown>, escalate: boolean): void {
    this.removeChild(child);
    if (escalate) {
      this.recordFailure(child.outcome);
      if (this.phase === BODY && !this.cancelRequested) {
        this.cancelRequested = true;
        this.interrupt(new CancelledError('a child task failed'));
      }
      this.cancelChildren();
    }
    // Settle through the queue rather than here: a settling chain of 10,000 tasks must not recurse.
    if (this.phase === CHILDREN && this.childCount === 0 && !this.queued) this.schedule();
  }

  private settle(): void {
    this.phase = SETTLED;
    const observers = this.observers;
    this.observers = null;
    const handled = (observers !== null && (!Array.isArray(observers) || observers.length > 0)) || this.deferred !== null;
    if (Array.isArray(observers)) for (const observer of observers) observer.onSettled(this);
    else if (observers !== null) observers.onSettled(this);
    if (this.deferred !== null) this.settlePromise();
    const unhandledFailure = !handled && this.failed && !(this.outcome instanceof CancelledError);
    if (this.parent !== null) this.parent.childSettled(this, unhandledFailure);
    else this.loop.rootSettled(this, unhandledFailure);
  }

  private settlePromise(): void {
    const deferred = this.deferred!;
    if (this.failed) deferred.reject(this.outcome);
    else deferred.resolve(this.outcome);
    // Settled once: the functions need not stay alive.
    deferred.resolve = deferred.reject = settledAlready;
  }

  /** Throws `err` into the task at its suspension point, now if parked, else at its next yield. */
  private interrupt(err: unknown): void {
    if (this.phase === CHILDREN) return;
    const on = this.parkedOn;
    if (on !== null) {
      on.abort(this);
      this.resume(THROW_, err);
    } else if (this.pendingInterrupt === null) {
      this.pendingInterrupt = err;
    }
  }

  private takeInterrupt(): unknown {
    const err = this.pendingInterrupt;
    this.pendingInterrupt = null;
    return err;
  }
}

/** The promise side of a task (made by the first then()) and the functions that settle it. */
class Deferred {
  readonly promise: Promise<unknown>;
  resolve: (value: unknown) => void = settledAlready;
  reject: (err: unknown) => void = settledAlready;
  constructor() {
    this.promise = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
}

function settledAlready(): void {}

/** The task whose step is running now (its generator is on the stack), or null. */
let running: Task<unknown> | null = null;

/**
 * The task whose step is running now, or null outside every task (a Protocol callback, a promise
 * continuation). An operation that can finish at once uses it to finish inside the `yield*`.
 * @internal
 */
export function runningTask(): Task<unknown> | null {
  return running;
}

/** An instruction that can park a task without first trying its operation again. @internal */
export interface ParkingOp extends Instruction<unknown> {
  park(task: Task<unknown>): void;
}

/** What `next()` yields once `Task.parkIn` parked the task: a constant, read by the step loop. */
const PARK_MARK = Object.freeze({ parked: true });
const PARKED: IteratorYieldResult<unknown> = Object.freeze({ value: PARK_MARK, done: false });

/**
 * The `next` every generator object inherits. runStep calls it directly rather than loading
 * `iterator.next`: generator objects of different functions have different maps, so that load is
 * megamorphic (a stub-cache probe per resume) once a loop runs more than four kinds of task.
 */
const generatorNext = (Object.getPrototypeOf(function* () {}) as { prototype: Generator }).prototype.next;

function toIterator<T>(source: OperationSource<T>): Iterator<unknown, T, unknown> {
  const op: Operation<T> = typeof source === 'function' ? source() : source;
  if (typeof op !== 'object' || op === null || typeof op[Symbol.iterator] !== 'function') {
    throw new TypeError(`a task's function returned ${describe(op)}, not an Operation (a generator)`);
  }
  return op[Symbol.iterator]();
}
