import { describe, expect, it } from 'vitest';
import { all, CancelledError, race, run, sleep, TimeoutError, withTimeout, type Operation } from '../src/index.js';
import { BACKENDS } from './helpers.js';

function* after<T>(ms: number, value: T, log?: string[]): Operation<T> {
  try {
    yield* sleep(ms);
    return value;
  } finally {
    log?.push(`finally ${String(value)}`);
  }
}

function* failAfter(ms: number, err: Error): Operation<never> {
  yield* sleep(ms);
  throw err;
}

describe.each(BACKENDS)('combinators on the %s backend', (backend) => {
  const go = <T>(main: () => Operation<T>) => run(main, { backend });

  describe('all', () => {
    it('returns results in input order, not completion order', async () => {
      expect(await go(() => all([after(15, 'a'), after(1, 'b'), after(5, 'c')]))).toEqual(['a', 'b', 'c']);
    });

    it('returns an empty array for no operations', async () => {
      expect(await go(() => all([]))).toEqual([]);
    });

    it('fails fast with the first error after the others ran their finally', async () => {
      const log: string[] = [];
      const boom = new Error('boom');
      const outcome = go(function* () {
        try {
          return yield* all<unknown>([after(10_000, 'slow', log), failAfter(2, boom), after(10_000, 'slower', log)]);
        } catch (err) {
          log.push('all threw');
          throw err;
        }
      });
      await expect(outcome).rejects.toBe(boom);
      expect(log).toEqual(['finally slow', 'finally slower', 'all threw']);
    });

    it('takes generator functions as well as operations', async () => {
      expect(
        await go(() =>
          all([
            function* () {
              return 1;
            },
            () => after(1, 2),
          ]),
        ),
      ).toEqual([1, 2]);
    });

    it('rejects input that is not an iterable of operations', async () => {
      await expect(go(() => all(5 as never))).rejects.toThrow(TypeError);
      await expect(go(() => all([after(1, 1), 'x' as never]))).rejects.toThrow(/item 1/);
    });
  });

  describe('race', () => {
    it('returns the first result and cancels the losers, whose cleanup runs first', async () => {
      const log: string[] = [];
      const winner = await go(function* () {
        const value = yield* race([after(50, 'slow', log), after(1, 'fast', log), after(60, 'slower', log)]);
        log.push('race returned');
        return value;
      });
      expect(winner).toBe('fast');
      expect(log).toEqual(['finally fast', 'finally slow', 'finally slower', 'race returned']);
    });

    it('throws the first error when a failure settles first', async () => {
      const boom = new Error('first');
      await expect(go(() => race([after(50, 'slow'), failAfter(1, boom)]))).rejects.toBe(boom);
    });

    it('needs at least one operation', async () => {
      await expect(go(() => race([]))).rejects.toThrow(RangeError);
    });
  });

  describe('withTimeout', () => {
    it('returns the value when the operation finishes in time', async () => {
      expect(await go(() => withTimeout(1_000, after(1, 'in time')))).toBe('in time');
    });

    it('cancels the operation and throws TimeoutError when time runs out', async () => {
      const log: string[] = [];
      let inner: unknown;
      const outcome = go(() =>
        withTimeout(5, function* () {
          try {
            yield* sleep(10_000);
          } catch (err) {
            inner = err;
            throw err;
          } finally {
            log.push('inner cleanup');
          }
        }),
      );
      await expect(outcome).rejects.toBeInstanceOf(TimeoutError);
      expect(inner).toBeInstanceOf(CancelledError);
      expect(log).toEqual(['inner cleanup']);
    });

    it('rejects a bad delay', async () => {
      await expect(go(() => withTimeout(NaN, after(1, 1)))).rejects.toThrow(RangeError);
    });
  });
});
