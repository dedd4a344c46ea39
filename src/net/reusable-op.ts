import { done, Instruction, YieldOnce, yieldResult } from '../operation.js';
import { socketStateError } from '../errors.js';

/**
 * An instruction reused for every call: a connection owns one read op and one write op, so a
 * message on the echo path allocates nothing (an instruction is its own iterator, with
 * preallocated results).
 *
 * One user at a time: the op holds per-call state (the buffer), so where a plain instruction would
 * give a second concurrent user an iterator of its own, `claim()` refuses it instead — one waiter
 * per descriptor and direction, as trio asserts.
 */
export abstract class ReusableOp<T> extends Instruction<T> {
  /**
   * Iterations given up by `release()` whose task has not yet received its CancelledError: the
   * `throw()` V8 will forward for each must not end the claim of whoever took the op since.
   */
  private orphans = 0;

  /** Throws if a task is still inside the op; `what` names the operation for the message. */
  protected claim(what: string): void {
    if (this.inUse) throw socketStateError('ERR_SOCKET_BUSY', `another task is already waiting to ${what} on this socket`);
  }

  /**
   * The waiting task was cancelled: free the op at once, so that code which cancels a reader can
   * read right away, before the cancelled task has even run its cleanup.
   */
  protected release(): void {
    if (!this.iterating) return;
    this.iterating = false;
    this.orphans++;
  }

  // The iteration protocol, as Instruction has it, once more. V8 keeps type feedback per function:
  // Instruction's own methods serve every kind of instruction (thirteen classes), so their field
  // accesses are megamorphic (a stub-cache lookup each; callgrind put LoadIC_Megamorphic and
  // StoreIC at 16% of an echo's user-space instructions). These copies see only the socket ops.

  override [Symbol.iterator](): Iterator<unknown, T, any> {
    if (this.iterating) return new YieldOnce<T>(this);
    this.iterating = true;
    this.yielded = false;
    return this;
  }

  override next(value?: unknown): IteratorResult<unknown, T> {
    if (this.yielded === false) {
      this.yielded = true;
      return yieldResult(this);
    }
    this.iterating = false;
    return done(value as T);
  }

  override throw(err?: unknown): IteratorResult<unknown, T> {
    if (this.orphans > 0) this.orphans--;
    else this.iterating = false;
    throw err;
  }

  override return(value?: T): IteratorResult<unknown, T> {
    this.iterating = false;
    return done(value as T);
  }
}
