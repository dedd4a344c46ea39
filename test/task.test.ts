import { describe, expect, it } from 'vitest';
import {
  CancelledError,
  Loop,
  run,
  sleep,
  spawn,
  wait,
  yieldNow,
  type Operation,
  type Task,
} from '../src/index.js';
import { BACKENDS } from './helpers.js';

describe.each(BACKENDS)('tasks on the %s backend', (backend) => {
  const go = <T>(main: () => Operation<T>) => run(main, { backend });

  describe('scheduling', () => {
    it('runs exactly the tasks queued when a batch began; tasks woken during it run in the next', async () => {
      const log: string[] = [];
      await go(function* () {
        function* worker(name: string): Operation<void> {
          log.push(`${name}1`);
          yield* yieldNow();
          log.push(`${name}2`);
        }
        const a = yield* spawn(worker('a'));
        const b = yield* spawn(worker('b'));
        log.push('main');
        yield* a;
        yield* b;
      });
      expect(log).toEqual(['main', 'a1', 'b1', 'a2', 'b2']);
    });

    it('never runs a child inside spawn: spawn returns first, the child starts in a later batch', async () => {
      const log: string[] = [];
      await go(function* () {
        const child = yield* spawn(function* () {
          log.push('child');
        });
        log.push('after spawn');
        expect(child.state).toBe('pending');
        yield* child;
        expect(child.state).toBe('fulfilled');
      });
      expect(log).toEqual(['after spawn', 'child']);
    });

    it('is FIFO and deterministic across runs', async () => {
      const order = async () => {
        const log: number[] = [];
        await go(function* () {
          const tasks: Task<void>[] = [];
          for (let i = 0; i < 20; i++) {
            tasks.push(
              yield* spawn(function* () {
                for (let k = 0; k < 3; k++) {
                  log.push(i);
                  yield* yieldNow();
                }
              }),
            );
          }
          for (const t of tasks) yield* t;
        });
        return log;
      };
      const first = await order();
      expect(first.slice(0, 20)).toEqual([...Array(20).keys()]);
      expect(await order()).toEqual(first);
    });

    it('returns a typed result through yield*', async () => {
      function* double(x: number): Operation<number> {
        yield* sleep(0);
        return x * 2;
      }
      const result: number = await go(function* () {
        return (yield* double(4)) + 1;
      });
      expect(result).toBe(9);
    });

    it('accepts a plain operation or a function returning one as main', async () => {
      function* fortyTwo(): Operation<number> {
        return 42;
      }
      expect(await run(fortyTwo(), { backend })).toBe(42);
      expect(await run(() => fortyTwo(), { backend })).toBe(42);
    });

    it('sleeps for at least the requested time and wakes timers in deadline order', async () => {
      const log: number[] = [];
      const loop = new Loop({ backend });
      const t0 = loop.time();
      await loop.runUntilComplete(function* () {
        for (const ms of [30, 10, 20, 10]) {
          yield* spawn(function* () {
            yield* sleep(ms);
            log.push(ms);
            expect(loop.time() - t0).toBeGreaterThanOrEqual(ms);
          });
        }
      });
      await loop.close();
      expect(log).toEqual([10, 10, 20, 30]);
    });
  });

  describe('no recursion', () => {
    it('completes a chain of 10,000 tasks, each spawning and joining the next', async () => {
      function* link(n: number): Operation<number> {
        if (n === 0) return 0;
        const next = yield* spawn(link(n - 1));
        return (yield* next) + 1;
      }
      expect(await go(() => link(10_000))).toBe(10_000);
    });

    it('computes the memoized fib(10000) with a task per sub-call', async () => {
      const memo = new Map<number, bigint>();
      function* fib(n: number): Operation<bigint> {
        if (n < 2) return BigInt(n);
        const known = memo.get(n);
        if (known !== undefined) return known;
        const a = yield* yield* spawn(fib(n - 1));
        const b = yield* yield* spawn(fib(n - 2));
        memo.set(n, a + b);
        return a + b;
      }
      const result = await go(() => fib(10_000));
      let [a, b] = [0n, 1n];
      for (let i = 0; i < 10_000; i++) [a, b] = [b, a + b];
      expect(result).toBe(a);
      expect(result.toString()).toHaveLength(2090);
    });

    it('handles 1,000 levels of plain nested yield*', async () => {
      function* nest(n: number): Operation<number> {
        if (n === 0) {
          yield* yieldNow();
          return 0;
        }
        return (yield* nest(n - 1)) + 1;
      }
      expect(await go(() => nest(1_000))).toBe(1_000);
    });
  });

  describe('errors', () => {
    it('delivers a task error to its joiner as the same object, stack intact', async () => {
      const boom = new Error('boom');
      let caught: unknown;
      await go(function* () {
        const child = yield* spawn(function* () {
          yield* sleep(1);
          throw boom;
        });
        try {
          yield* child;
        } catch (err) {
          caught = err;
        }
      });
      expect(caught).toBe(boom);
      expect((caught as Error).stack).toContain('task.test.ts');
    });

    it('fails the parent, cancels siblings and the parent body when an unjoined child fails', async () => {
      const boom = new Error('boom');
      const log: string[] = [];
      let sibling!: Task<void>;
      const outcome = go(function* () {
        sibling = yield* spawn(function* () {
          try {
            yield* sleep(10_000);
          } finally {
            log.push('sibling cleanup');
          }
        });
        yield* spawn(function* () {
          yield* sleep(1);
          throw boom;
        });
        try {
          yield* sleep(10_000);
        } catch (err) {
          log.push(`parent body got ${(err as Error).name}`);
          throw err;
        }
      });
      await expect(outcome).rejects.toBe(boom);
      expect(log).toEqual(['parent body got CancelledError', 'sibling cleanup']);
      expect(sibling.state).toBe('cancelled');
    });

    it('rejects run() with an error thrown by main', async () => {
      await expect(
        go(function* () {
          yield* sleep(0);
          throw new RangeError('bad');
        }),
      ).rejects.toThrow(RangeError);
    });

    it('reports the first error when a child and the body both fail', async () => {
      const first = new Error('first');
      const outcome = go(function* () {
        yield* spawn(function* () {
          throw first;
        });
        try {
          yield* sleep(10_000);
        } finally {
          // eslint-disable-next-line no-unsafe-finally
          throw new Error('second');
        }
      });
      const warnings: string[] = [];
      const onWarning = (w: Error) => warnings.push(w.message);
      process.on('warning', onWarning);
      await expect(outcome).rejects.toBe(first);
      await new Promise((r) => setImmediate(r));
      process.off('warning', onWarning);
      expect(warnings.some((w) => w.includes('second'))).toBe(true);
    });


    it("keeps a child's error as the task's result when the body swallows the cancel and returns a value", async () => {
      const childError = new Error('child failed');
      const seen = await go(function* () {
        const t = yield* spawn(function* () {
          yield* spawn(function* () {
            throw childError;
          });
          try {
            yield* sleep(10_000);
          } catch {
            // the cancel the child's failure caused
          }
          return 'value';
        });
        let joined: unknown;
        try {
          joined = yield* t;
        } catch (err) {
          joined = err;
        }
        return { joined, state: t.state, reason: t.reason, promised: yield* wait(t.then(() => 'fulfilled', (err: unknown) => err)) };
      });
      expect(seen.joined).toBe(childError);
      expect(seen.state).toBe('rejected');
      expect(seen.reason).toBe(childError);
      expect(seen.promised).toBe(childError);
    });
    it('reports a failed root task nobody awaits to onError instead of dropping it', async () => {
      const errors: unknown[] = [];
      const loop = new Loop({ backend, onError: (e) => errors.push(e) });
      const boom = new Error('unobserved');
      loop.spawn(function* () {
        yield* sleep(1);
        throw boom;
      });
      await loop.runUntilComplete(function* () {
        yield* sleep(20);
      });
      await loop.close();
      expect(errors).toEqual([boom]);
    });
  });

  describe('cancellation', () => {
    it('throws CancelledError at the suspension point; finally may yield for async cleanup', async () => {
      const log: string[] = [];
      await go(function* () {
        const child = yield* spawn(function* () {
          try {
            log.push('started');
            yield* sleep(10_000);
            log.push('not reached');
          } catch (err) {
            log.push(`caught ${(err as Error).name}`);
            throw err;
          } finally {
            yield* sleep(5);
            log.push('cleaned up');
          }
        });
        yield* sleep(1);
        child.cancel('test');
        expect(child.state).toBe('pending');
        let joined: unknown;
        try {
          yield* child;
        } catch (err) {
          joined = err;
        }
        expect(joined).toBeInstanceOf(CancelledError);
        expect((joined as Error).message).toContain('test');
        expect(child.state).toBe('cancelled');
      });
      expect(log).toEqual(['started', 'caught CancelledError', 'cleaned up']);
    });

    it('never runs the body of a task cancelled before its first step', async () => {
      let ran = false;
      await go(function* () {
        const child = yield* spawn(function* () {
          ran = true;
        });
        child.cancel();
        yield* sleep(1);
        expect(child.state).toBe('cancelled');
      });
      expect(ran).toBe(false);
    });

    it('cancels children when a task is cancelled, and waits for their cleanup', async () => {
      const log: string[] = [];
      await go(function* () {
        const parent = yield* spawn(function* () {
          yield* spawn(function* () {
            try {
              yield* sleep(10_000);
            } finally {
              yield* sleep(2);
              log.push('grandchild cleanup');
            }
          });
          yield* sleep(10_000);
        });
        yield* sleep(1);
        parent.cancel();
        yield* waitSettled(parent);
        log.push(`parent ${parent.state}`);
      });
      expect(log).toEqual(['grandchild cleanup', 'parent cancelled']);
    });

    it('delivers a cancel requested while the task is running at its next yield', async () => {
      const log: string[] = [];
      await go(function* () {
        const self = yield* spawn(function* () {
          selfRef!.cancel();
          log.push('still running');
          try {
            yield* sleep(0);
          } catch (err) {
            log.push((err as Error).name);
            throw err;
          }
        });
        let selfRef: Task<void> | undefined = self;
        yield* waitSettled(self);
        expect(self.state).toBe('cancelled');
      });
      expect(log).toEqual(['still running', 'CancelledError']);
    });

    it('lets a task swallow the cancellation and return a value', async () => {
      const value = await go(function* () {
        const child = yield* spawn(function* () {
          try {
            yield* sleep(10_000);
          } catch {
            return 'recovered';
          }
          return 'not cancelled';
        });
        yield* sleep(1);
        child.cancel();
        return yield* child;
      });
      expect(value).toBe('recovered');
    });

    it('removes a cancelled sleep so it no longer keeps the process alive', async () => {
      const loop = new Loop({ backend });
      await loop.runUntilComplete(function* () {
        const sleeper = yield* spawn(() => sleep(60_000));
        yield* sleep(1);
        sleeper.cancel();
        yield* waitSettled(sleeper);
      });
      expect(loop.backend.name).toBe(backend);
      await loop.close();
    });
  });

  describe('nursery', () => {
    it('settles a task whose body returned only after its children settled', async () => {
      const log: string[] = [];
      await go(function* () {
        const parent = yield* spawn(function* () {
          yield* spawn(function* () {
            yield* sleep(10);
            log.push('child done');
          });
          log.push('parent body done');
          return 'p';
        });
        expect(yield* parent).toBe('p');
        log.push('joined');
      });
      expect(log).toEqual(['parent body done', 'child done', 'joined']);
    });

    it('settles run() only after every descendant finished its cleanup', async () => {
      const log: string[] = [];
      await go(function* () {
        yield* spawn(function* () {
          yield* spawn(function* () {
            yield* sleep(5);
            log.push('grandchild');
          });
        });
      });
      log.push('run settled');
      expect(log).toEqual(['grandchild', 'run settled']);
    });

    it('does not fail the parent for a child error that a joiner received', async () => {
      const result = await go(function* () {
        const child = yield* spawn(function* () {
          yield* sleep(1);
          throw new Error('handled');
        });
        try {
          yield* child;
        } catch (err) {
          return (err as Error).message;
        }
        return 'no error';
      });
      expect(result).toBe('handled');
    });
  });

  describe('wait(promise)', () => {
    it('resumes with the value of a promise', async () => {
      expect(await go(() => wait(Promise.resolve(7)))).toBe(7);
      expect(await go(() => wait(new Promise<string>((r) => setTimeout(() => r('late'), 5))))).toBe('late');
    });

    it('throws a rejection inside the task', async () => {
      const err = new Error('nope');
      const caught = await go(function* () {
        try {
          yield* wait(Promise.reject(err));
        } catch (e) {
          return e;
        }
        return null;
      });
      expect(caught).toBe(err);
    });

    it('raises no unhandled rejection for a promise whose waiter was cancelled', async () => {
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown) => unhandled.push(reason);
      process.on('unhandledRejection', onUnhandled);
      await go(function* () {
        const child = yield* spawn(() => wait(new Promise((_, reject) => setTimeout(() => reject(new Error('late')), 5))));
        yield* sleep(1);
        child.cancel();
        yield* sleep(15);
      });
      await new Promise((r) => setTimeout(r, 10));
      process.off('unhandledRejection', onUnhandled);
      expect(unhandled).toEqual([]);
    });

    it('lets async code await a task', async () => {
      const loop = new Loop({ backend });
      const task = loop.spawn(function* () {
        yield* sleep(1);
        return 'awaited';
      });
      expect(await task).toBe('awaited');
      await loop.close();
    });
  });

  describe('bad input', () => {
    it('throws clear errors inside the task and the loop survives', async () => {
      const messages = await go(function* () {
        const out: string[] = [];
        const attempts: (() => Operation<unknown>)[] = [
          () => sleep(NaN),
          () => sleep(-1),
          () => sleep('x' as unknown as number),
          () => spawn(42 as never),
          () => wait(3 as never),
          function* () {
            yield 123;
          },
          function* () {
            yield Promise.resolve(1);
          },
        ];
        for (const attempt of attempts) {
          try {
            yield* attempt();
            out.push('no error');
          } catch (err) {
            out.push(`${(err as Error).name}: ${(err as Error).message}`);
          }
        }
        yield* sleep(1);
        out.push('survived');
        return out;
      });
      expect(messages[0]).toMatch(/^RangeError: .*NaN/);
      expect(messages[1]).toMatch(/^RangeError: .*-1/);
      expect(messages[2]).toMatch(/^TypeError: .*"x"/);
      expect(messages[3]).toMatch(/^TypeError: spawn\(\).*42/);
      expect(messages[4]).toMatch(/^TypeError: wait\(\)/);
      expect(messages[5]).toMatch(/^TypeError: a task yielded 123/);
      expect(messages[6]).toMatch(/^TypeError: a task yielded a Promise.*wait\(promise\)/);
      expect(messages[7]).toBe('survived');
    });

    it('rejects an unknown backend name', () => {
      expect(() => new Loop({ backend: 'uring' as never })).toThrow(RangeError);
    });
  });
});

/** Waits until `task` settles without rethrowing its error. */
function* waitSettled(task: Task<unknown>): Operation<void> {
  try {
    yield* task;
  } catch {
    // the outcome is read from task.state
  }
}
