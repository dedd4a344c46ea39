import { describe, TimeoutError } from './errors.js';
import { Instruction, isOperationSource, type Operation, type OperationSource } from './operation.js';
import { checkDelay, sleep, spawn } from './primitives.js';
import { NEXT, THROW, type Observer, type Task } from './task.js';

/**
 * Runs every operation as a child task and returns their results in input order. Fails fast: the
 * first failure cancels the others, and `all` throws it once their cleanup has run.
 */
export function* all<T>(ops: Iterable<OperationSource<T>>): Operation<T[]> {
  const sources = checkSources(ops, 'all');
  if (sources.length === 0) return [];
  const tasks: Task<T>[] = [];
  for (const source of sources) tasks.push(yield* spawn(source));
  return (yield new Gather(tasks, false)) as T[];
}

/**
 * Runs every operation as a child task; the first to settle decides the result (value or error).
 * The others are cancelled, and `race` returns once their cleanup has run.
 */
export function* race<T>(ops: Iterable<OperationSource<T>>): Operation<T> {
  const sources = checkSources(ops, 'race');
  if (sources.length === 0) throw new RangeError('race() needs at least one operation');
  const tasks: Task<T>[] = [];
  for (const source of sources) tasks.push(yield* spawn(source));
  return (yield new Gather(tasks, true)) as T;
}

/** Runs `op`; if it has not finished after `ms`, cancels it and throws `TimeoutError`. */
export function* withTimeout<T>(ms: number, op: OperationSource<T>): Operation<T> {
  checkDelay(ms, 'withTimeout');
  if (!isOperationSource(op)) throw new TypeError(`withTimeout() takes an Operation, not ${describe(op)}`);
  return yield* race<T>([op, timeoutAfter(ms)]);
}

function* timeoutAfter(ms: number): Operation<never> {
  yield* sleep(ms);
  throw new TimeoutError(ms);
}

function checkSources<T>(ops: Iterable<OperationSource<T>>, what: string): OperationSource<T>[] {
  if (ops === null || typeof ops !== 'object' || typeof (ops as Iterable<unknown>)[Symbol.iterator] !== 'function') {
    throw new TypeError(`${what}() takes an iterable of operations, not ${describe(ops)}`);
  }
  const sources = [...ops];
  sources.forEach((source, i) => {
    if (!isOperationSource(source)) throw new TypeError(`${what}(): item ${i} is ${describe(source)}, not an Operation`);
  });
  return sources;
}

/** Waits on a set of child tasks for `all` (every value, or the first failure) or `race`. */
class Gather<T> extends Instruction<T[] | T> {
  private waiter: Task<unknown> | null = null;
  private readonly slots: GatherSlot[];
  private readonly results: T[];
  private remaining: number;
  private decided = false;
  private mode = NEXT as typeof NEXT | typeof THROW;
  private outcome: unknown = undefined;

  constructor(private readonly tasks: Task<T>[], private readonly first: boolean) {
    super();
    this.remaining = tasks.length;
    this.results = new Array(tasks.length);
    this.slots = tasks.map((_, i) => new GatherSlot(this, i));
  }

  start(waiter: Task<unknown>): boolean {
    this.tasks.forEach((task, i) => {
      if (task.settled) this.settled(i, task);
      else task.observe(this.slots[i]!);
    });
    this.waiter = waiter;
    if (this.remaining === 0) {
      waiter.resumeMode = this.mode;
      waiter.resumeValue = this.outcome;
      return true;
    }
    return false;
  }

  override abort(): void {
    this.tasks.forEach((task, i) => task.unobserve(this.slots[i]!));
    this.waiter = null;
  }

  settled(i: number, task: Task<T>): void {
    this.remaining--;
    if (!this.decided) {
      if (task.rejected) this.decide(THROW, task.reason);
      else if (this.first) this.decide(NEXT, task.result());
      else {
        this.results[i] = task.result();
        if (this.remaining === 0) this.decide(NEXT, this.results);
      }
    } else if (task.rejected && task.state === 'rejected' && task.reason !== this.outcome) {
      // A loser failed while being cancelled: nobody else will see it, so it is reported.
      task.loop.reportSuppressed(task.reason, this.outcome);
    }
    if (this.remaining === 0 && this.waiter !== null && this.waiter.parkedOn === this) {
      const waiter = this.waiter;
      this.waiter = null;
      waiter.resume(this.mode, this.outcome);
    }
  }

  private decide(mode: typeof NEXT | typeof THROW, outcome: unknown): void {
    this.decided = true;
    this.mode = mode;
    this.outcome = outcome;
    for (const task of this.tasks) if (!task.settled) task.cancel();
  }
}

class GatherSlot implements Observer {
  constructor(private readonly gather: Gather<any>, private readonly index: number) {}
  onSettled(task: Task<unknown>): void {
    this.gather.settled(this.index, task as Task<any>);
  }
}
