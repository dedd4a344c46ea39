import { describe, expect, it } from 'vitest';
import { Loop, sleep, spawn } from '../src/index.js';
import { BACKENDS, DIST_ENTRY } from './helpers.js';

describe.each(BACKENDS)('Loop on the %s backend', (backend) => {
  it('runs callSoon callbacks in FIFO order with their arguments', async () => {
    const loop = new Loop({ backend });
    const log: string[] = [];
    await new Promise<void>((done) => {
      loop.callSoon((x: string) => log.push(x), 'a');
      loop.callSoon((x: string, y: string) => log.push(x + y), 'b', 'c');
      loop.callSoon(done);
    });
    expect(log).toEqual(['a', 'bc']);
    await loop.close();
  });

  it('runs callLater callbacks after their delay, in deadline order, and honours cancel()', async () => {
    const loop = new Loop({ backend });
    const log: string[] = [];
    const t0 = loop.time();
    await new Promise<void>((done) => {
      loop.callLater(20, () => log.push('20'));
      const cancelled = loop.callLater(5, () => log.push('cancelled'));
      loop.callLater(10, () => log.push(`10 after ${loop.time() - t0 >= 10}`));
      cancelled.cancel();
      loop.callLater(25, done);
    });
    expect(log).toEqual(['10 after true', '20']);
    await loop.close();
  });

  it('fires every timer of a batch even when one of them schedules a timer as it fires', async () => {
    const loop = new Loop({ backend });
    const fired: string[] = [];
    // Both due at once, so they expire in one batch; the first re-arms itself synchronously (as a
    // lazy idle timer does), and the heap may hand it the id the second just gave up.
    const rearming = {
      onTimer: () => {
        fired.push('first');
        loop.addTimer(1, { onTimer: () => fired.push('re-armed') });
      },
    };
    loop.addTimer(0, rearming);
    loop.addTimer(0, { onTimer: () => fired.push('second') });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(fired).toEqual(['first', 'second', 're-armed']);
    await loop.close();
  });

  it('reports a throwing callback to onError and keeps running', async () => {
    const errors: unknown[] = [];
    const loop = new Loop({ backend, onError: (e) => errors.push(e) });
    const boom = new Error('callback');
    await new Promise<void>((done) => {
      loop.callSoon(() => {
        throw boom;
      });
      loop.callSoon(done);
    });
    expect(errors).toEqual([boom]);
    await loop.close();
  });

  it('cancels pending tasks on close() and lets their cleanup run before it resolves', async () => {
    const loop = new Loop({ backend });
    const log: string[] = [];
    const task = loop.spawn(function* () {
      yield* spawn(function* () {
        try {
          yield* sleep(60_000);
        } finally {
          yield* sleep(2);
          log.push('child cleanup');
        }
      });
      try {
        yield* sleep(60_000);
      } finally {
        log.push('root cleanup');
      }
    });
    await new Promise((r) => setTimeout(r, 5));
    await loop.close();
    expect(log).toEqual(['root cleanup', 'child cleanup']);
    expect(task.state).toBe('cancelled');
    expect(() => loop.callSoon(() => {})).toThrow(/closed/);
  });

  it('rejects bad arguments with TypeError and RangeError', async () => {
    const loop = new Loop({ backend });
    expect(() => loop.callSoon(5 as never)).toThrow(TypeError);
    expect(() => loop.callLater(-1, () => {})).toThrow(RangeError);
    expect(() => loop.callLater(1, 'x' as never)).toThrow(TypeError);
    expect(() => loop.spawn(42 as never)).toThrow(TypeError);
    await loop.close();
  });

  it('keeps Node alive while a sleep is pending and not after it is cancelled', async () => {
    const { spawnSync } = await import('node:child_process');
    const script = `
      import { Loop, sleep } from ${JSON.stringify(DIST_ENTRY)};
      const loop = new Loop({ backend: ${JSON.stringify(backend)} });
      const t = loop.spawn(function* () { yield* sleep(30); console.log('slept'); });
      const forever = loop.spawn(() => sleep(3_600_000));
      setTimeout(() => forever.cancel(), 50);
    `;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(child.stderr).toBe('');
    expect(child.stdout.trim()).toBe('slept');
    expect(child.status).toBe(0);
  });
});
