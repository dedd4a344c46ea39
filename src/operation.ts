import type { Task } from './task.js';

/**
 * A coroutine's unit of work: an iterable whose iterator returns `T`. `yield*` an operation inside
 * a generator function and the result comes back typed (the Effection technique):
 *
 *     function* fetchSize(conn: Connection): Operation<number> { return (yield* conn.read())!.length }
 */
export interface Operation<T> {
  [Symbol.iterator](): Iterator<unknown, T, any>;
}

/**
 * What a task yields to the driver: a request to suspend until something happens. User code never
 * yields one directly; it `yield*`s an operation that yields it. An instruction either answers at
 * once (`start` returns true after setting the task's resume value) or parks the task and later
 * wakes it exactly once through `task.resume`.
 */
export abstract class Instruction<T = unknown> implements Operation<T>, Iterator<unknown, T, any> {
  /** True while a `yield*` is inside this instruction as its own iterator (the fast path). */
  protected iterating = false;
  protected yielded = false;

  /**
   * The instruction is its own iterator, so a `yield*` allocates nothing more. Should the same
   * instruction be iterated again before the first `yield*` finished (one operation object run by
   * two tasks), the second gets an iterator of its own.
   */
  [Symbol.iterator](): Iterator<unknown, T, any> {
    if (this.iterating) return new YieldOnce<T>(this);
    this.iterating = true;
    this.yielded = false;
    return this;
  }

  next(value?: unknown): IteratorResult<unknown, T> {
    if (!this.yielded) {
      this.yielded = true;
      return yieldResult(this);
    }
    this.iterating = false;
    return done(value as T);
  }

  throw(err?: unknown): IteratorResult<unknown, T> {
    this.iterating = false;
    throw err;
  }

  return(value?: T): IteratorResult<unknown, T> {
    this.iterating = false;
    return done(value as T);
  }

  /** A `yield*` is inside this instruction right now. */
  protected get inUse(): boolean {
    return this.iterating;
  }

  /** Begin waiting on behalf of `task`. Returns true when the result is already in the task. */
  abstract start(task: Task<unknown>): boolean;

  /** `task` is cancelled while parked here: drop its interest (timer, waiter slot, fd). */
  abort(_task: Task<unknown>): void {}
}

/**
 * The final iterator result, shared: `yield*` reads `done` and `value` before any other code runs,
 * so one object serves every completion.
 */
const DONE: IteratorReturnResult<unknown> = { value: undefined, done: true };

/** @internal */
export function done<T>(value: T): IteratorReturnResult<T> {
  DONE.value = value;
  return DONE as IteratorReturnResult<T>;
}

/**
 * The result an instruction yields itself with, shared likewise: `yield*` hands it up unchanged
 * and the driver reads it at once. One object per instruction cost 40 B per connection (its read
 * op's), and a field on every instruction.
 */
const YIELD: IteratorYieldResult<unknown> = { value: undefined, done: false };

/** @internal */
export function yieldResult(instruction: Instruction<unknown>): IteratorYieldResult<unknown> {
  YIELD.value = instruction;
  return YIELD;
}

/** Yields its instruction once and returns what the driver sends back. @internal */
export class YieldOnce<T> implements Iterator<unknown, T, any> {
  private yielded = false;
  constructor(private readonly instruction: Instruction<T>) {}

  next(value?: unknown): IteratorResult<unknown, T> {
    if (this.yielded) return done(value as T);
    this.yielded = true;
    return { value: this.instruction, done: false };
  }

  throw(err?: unknown): IteratorResult<unknown, T> {
    throw err;
  }

  return(value?: T): IteratorResult<unknown, T> {
    this.yielded = true;
    return done(value as T);
  }
}

/** An Operation or a function that returns one (a generator function, `() => fib(10)`). */
export type OperationSource<T> = Operation<T> | (() => Operation<T>);

export function isOperationSource(value: unknown): value is OperationSource<unknown> {
  if (typeof value === 'function') return true;
  return typeof value === 'object' && value !== null && typeof (value as Operation<unknown>)[Symbol.iterator] === 'function';
}
