import { Instruction } from '../operation.js';

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
  /** Throws if a task is still inside the op; `what` names the operation for the message. */
  protected claim(what: string): void {
    if (this.inUse) throw new Error(`another task is already waiting to ${what} on this socket`);
  }
}
