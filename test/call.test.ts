import { describe, expect, it } from 'vitest';
import { call, CancelledError, run, sleep, spawn, wait, type Operation } from '../src/index.js';
import { BACKENDS } from './helpers.js';

describe.each(BACKENDS)('call() on the %s backend', (backend) => {
  const go = <T>(main: () => Operation<T>) => run(main, { backend });

  it('returns the called operation result, typed, through any depth', async () => {
    function* depth(n: number): Operation<number> {
      if (n === 0) {
        yield* wait(Promise.resolve());
        return 0;
      }
      return (yield* call(depth(n - 1))) + 1;
    }
    // Far deeper than V8's stack allows for nested yield* (about 4,700 levels on Node 20).
    expect(await go(() => depth(20_000))).toBe(20_000);
  });

  it('takes a function returning an operation', async () => {
    expect(
      await go(() =>
        call(function* () {
          yield* sleep(0);
          return 'fn';
        }),
      ),
    ).toBe('fn');
  });

  it('throws an error from the called frame into its caller, which may catch it', async () => {
    const boom = new Error('deep');
    function* thrower(): Operation<never> {
      yield* sleep(0);
      throw boom;
    }
    const caught = await go(function* () {
      try {
        yield* call(() => call(thrower()));
      } catch (err) {
        return err;
      }
      return null;
    });
    expect(caught).toBe(boom);
  });

  it('runs every frame`s finally, innermost first, when the task is cancelled', async () => {
    const log: string[] = [];
    function* frame(n: number): Operation<void> {
      try {
        if (n === 0) yield* sleep(60_000);
        else yield* call(frame(n - 1));
      } finally {
        log.push(`frame ${n}`);
      }
    }
    await go(function* () {
      const task = yield* spawn(() => call(frame(2)));
      yield* sleep(1);
      task.cancel();
      try {
        yield* task;
      } catch (err) {
        expect(err).toBeInstanceOf(CancelledError);
      }
    });
    expect(log).toEqual(['frame 0', 'frame 1', 'frame 2']);
  });

  it('rejects what is not an operation', async () => {
    await expect(go(() => call(7 as never))).rejects.toThrow(TypeError);
    await expect(go(() => call((() => 7) as never))).rejects.toThrow(/not an Operation/);
  });
});
