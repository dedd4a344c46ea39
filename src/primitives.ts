import { describe } from './errors.js';
import { Instruction, isOperationSource, type Operation, type OperationSource } from './operation.js';
import { NEXT, THROW, Task } from './task.js';

/** Suspends the task for `ms` milliseconds (fractions allowed; 0 waits for the next tick). */
export function sleep(ms: number): Operation<void> {
  return new Sleep(checkDelay(ms, 'sleep'));
}

/** Lets every other ready task run once before this one continues. */
export function yieldNow(): Operation<void> {
  return YIELD_NOW;
}

/**
 * Starts `source` as a child task of the current one and returns its Task at once. The child's
 * first step runs in a later batch, never inside `spawn`.
 */
export function spawn<T>(source: OperationSource<T>): Operation<Task<T>> {
  if (!isOperationSource(source)) {
    throw new TypeError(`spawn() takes an Operation or a function returning one, not ${describe(source)}`);
  }
  return new Spawn(source);
}

/**
 * Runs `op` in the current task and returns its result, like `yield* op`, but with the driver
 * keeping the call stack: a suspension inside deeply nested `call`s resumes only the innermost
 * generator, where `yield*` resumes every level (O(depth) per resume). Use it for deep recursion.
 */
export function call<T>(op: OperationSource<T>): Operation<T> {
  if (!isOperationSource(op)) throw new TypeError(`call() takes an Operation or a function returning one, not ${describe(op)}`);
  return new Call(op);
}

/** Suspends the task until `promise` settles: resumes with its value or throws its rejection. */
export function wait<T>(promise: PromiseLike<T>): Operation<T> {
  if ((typeof promise !== 'object' && typeof promise !== 'function') || promise === null || typeof promise.then !== 'function') {
    throw new TypeError(`wait() takes a promise or thenable, not ${describe(promise)}`);
  }
  return new WaitFor(promise);
}

export function checkDelay(ms: unknown, what: string): number {
  if (typeof ms !== 'number') throw new TypeError(`${what}() takes a number of milliseconds, not ${describe(ms)}`);
  if (!(ms >= 0) || ms === Infinity) throw new RangeError(`${what}() takes a finite number of milliseconds >= 0, not ${ms}`);
  return ms;
}

class Sleep extends Instruction<void> {
  constructor(private readonly ms: number) {
    super();
  }

  start(task: Task<unknown>): boolean {
    task.waitId = task.loop.addTimer(this.ms, task);
    return false;
  }

  override abort(task: Task<unknown>): void {
    task.loop.cancelTimer(task.waitId);
    task.waitId = -1;
  }
}

class YieldNow extends Instruction<void> {
  start(task: Task<unknown>): boolean {
    task.resume(NEXT, undefined);
    return false;
  }
}
const YIELD_NOW = new YieldNow();

class Spawn<T> extends Instruction<Task<T>> {
  constructor(private readonly source: OperationSource<T>) {
    super();
  }

  start(parent: Task<unknown>): boolean {
    const child = new Task<T>(parent.loop, this.source, parent);
    child.schedule();
    parent.resumeMode = NEXT;
    parent.resumeValue = child;
    return true;
  }
}

class Call<T> extends Instruction<T> {
  constructor(private readonly source: OperationSource<T>) {
    super();
  }

  start(task: Task<unknown>): boolean {
    let iterator: Iterator<unknown, unknown, unknown>;
    try {
      const op = typeof this.source === 'function' ? this.source() : this.source;
      if (!isOperationSource(op) || typeof op === 'function') throw new TypeError(`call(): the function returned ${describe(op)}, not an Operation`);
      iterator = op[Symbol.iterator]();
    } catch (err) {
      task.resumeMode = THROW;
      task.resumeValue = err;
      return true;
    }
    task.pushFrame(iterator);
    task.resumeMode = NEXT;
    task.resumeValue = undefined;
    return true;
  }
}

class WaitFor<T> extends Instruction<T> {
  constructor(private readonly promise: PromiseLike<T>) {
    super();
  }

  start(task: Task<unknown>): boolean {
    const gen = task.parkGen;
    // Promise.resolve adopts any thenable asynchronously, so a misbehaving thenable cannot wake
    // the task twice or inside start(). The rejection handler is attached now: a promise handed
    // to wait() never raises an unhandled rejection, even if the task is cancelled meanwhile.
    Promise.resolve(this.promise).then(
      (value) => {
        if (task.parkGen === gen && task.parkedOn === this) task.loop.resumeFromCallback(task, NEXT, value);
      },
      (err: unknown) => {
        if (task.parkGen === gen && task.parkedOn === this) task.loop.resumeFromCallback(task, THROW, err);
      },
    );
    return false;
  }
}

/** The task running this operation (for operations that need its loop). */
export function currentTask(): Operation<Task<unknown>> {
  return CURRENT_TASK;
}

class CurrentTask extends Instruction<Task<unknown>> {
  start(task: Task<unknown>): boolean {
    task.resumeMode = NEXT;
    task.resumeValue = task;
    return true;
  }
}
const CURRENT_TASK = new CurrentTask();
