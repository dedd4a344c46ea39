import { Instruction } from '../operation.js';

/**
 * An instruction that is its own iterator and is reused for every call: a connection owns one read
 * op and one write op, so a message on the echo path allocates nothing (the iterator results are
 * preallocated too; V8 reads them before the next call).
 *
 * One user at a time: `claim()` refuses a second task while the first is still inside the op —
 * one waiter per descriptor and direction, as trio asserts.
 */
export abstract class ReusableOp<T> extends Instruction<T> implements Iterator<unknown, T, any> {
  private inUse = false;
  private yielded = false;
  private readonly yieldResult: IteratorYieldResult<unknown> = { value: this, done: false };
  private readonly returnResult: IteratorReturnResult<T> = { value: undefined as T, done: true };

  /** Throws if another task is using the op; `what` names the operation for the message. */
  protected claim(what: string): void {
    if (this.inUse) throw new Error(`another task is already waiting to ${what} on this socket`);
  }

  override [Symbol.iterator](): Iterator<unknown, T, any> {
    this.inUse = true;
    this.yielded = false;
    return this;
  }

  next(value?: unknown): IteratorResult<unknown, T> {
    if (!this.yielded) {
      this.yielded = true;
      return this.yieldResult;
    }
    this.inUse = false;
    this.returnResult.value = value as T;
    return this.returnResult;
  }

  throw(err?: unknown): IteratorResult<unknown, T> {
    this.inUse = false;
    throw err;
  }

  return(value?: T): IteratorResult<unknown, T> {
    this.inUse = false;
    this.returnResult.value = value as T;
    return this.returnResult;
  }
}
