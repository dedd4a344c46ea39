/**
 * Every exported function and method, called with random argument lists: only TypeError,
 * RangeError or an Error with a `code` may come out, and the process must survive.
 *
 * Arguments in fd positions never name an fd this test does not own (stdin, vitest's IPC pipe):
 * they are garbage, fds past any RLIMIT_NOFILE (always closed), or sockets the fuzz itself opened.
 */
import { describe, expect, it } from 'vitest';
import type { NativeBinding, NativePoller, NativeTimerHeap } from '../../src/native.js';
import { addons } from './addons.js';

/** mulberry32: a small seeded PRNG, so a failure replays exactly. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function detachedUint8Array(): Uint8Array {
  const bytes = new Uint8Array(16);
  structuredClone(bytes.buffer, { transfer: [bytes.buffer] });
  return bytes;
}

function detachedInt32Array(): Int32Array {
  const ints = new Int32Array(16);
  structuredClone(ints.buffer, { transfer: [ints.buffer] });
  return ints;
}

const CLOSED_FD_BASE = 2 ** 30; // above Linux's hard ceiling for RLIMIT_NOFILE (fs.nr_open)

function isAcceptable(error: unknown): boolean {
  if (error instanceof TypeError || error instanceof RangeError) return true;
  return error instanceof Error && typeof (error as { code?: unknown }).code === 'string';
}

describe.each(addons)('garbage arguments (%s)', (_name, n: NativeBinding) => {
  it('10,000 random argument lists yield only TypeError, RangeError or coded Errors', () => {
    const random = prng(0xc01007);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const owned = new Set<number>();
    const pollers: NativePoller[] = [];
    const wantsOf = new Map<NativePoller, Int32Array>();
    const heaps: NativeTimerHeap[] = [new n.TimerHeap()];

    const numbers = [
      0, -0, 1, 2, 3, 7, 16, 1024, 65535, 65536, -1, -2, 0.4, 1.5, -0.5, NaN, Infinity, -Infinity,
      2 ** 31 - 1, 2 ** 31, -(2 ** 31), 2 ** 32, 2 ** 53, Number.MAX_VALUE, Number.MIN_VALUE, 1e-300,
    ];
    const others = (): unknown[] => [
      undefined, null, true, false, '', '0', '127.0.0.1', '::1', '0.0.0.0', 'localhost', '1.2.3.4.5',
      Symbol('s'), 1n, {}, [], [1, 2], () => {}, new Date(0), Buffer.alloc(0), Buffer.alloc(8),
      new Uint8Array(32).subarray(5, 9), new Uint16Array(4), new Int32Array(0), new Int32Array(8),
      new Float64Array(2), new DataView(new ArrayBuffer(8)), new ArrayBuffer(8), new SharedArrayBuffer(8), detachedUint8Array(),
      detachedUint8Array().buffer,
      detachedInt32Array(), { valueOf: () => 3 },
    ];
    const anyValue = (): unknown => (random() < 0.5 ? pick(numbers) : pick(others()));
    const fdValue = (): unknown => {
      const roll = random();
      if (roll < 0.3 && owned.size > 0) return pick([...owned]);
      if (roll < 0.6) return CLOSED_FD_BASE + Math.floor(random() * 2 ** 30);
      const value = anyValue();
      // Small non-negative integers could name stdio or vitest's own fds.
      return typeof value === 'number' && value >= 0 && value < CLOSED_FD_BASE ? -1 : value;
    };
    const args = (...slots: Array<() => unknown>): unknown[] => {
      // A slot sometimes gets a value of the wrong kind, but an fd slot never a small fd number.
      const list = slots.map((slot) => (random() < 0.9 || slot === fdValue ? slot() : anyValue()));
      // Sometimes too few arguments, sometimes too many.
      const roll = random();
      if (roll < 0.1) return list.slice(0, Math.floor(random() * list.length));
      if (roll < 0.15) return [...list, anyValue()];
      return list;
    };
    const own = (result: unknown): void => {
      if (typeof result === 'number' && result >= 0) owned.add(result);
    };
    const poller = (): NativePoller => {
      if (pollers.length === 0) pollers.push(new n.Poller(() => {}));
      return pick(pollers);
    };
    // wait() with a positive or infinite timeout would block the test: poll instead.
    const nonBlocking = (list: unknown[]): unknown[] => {
      const timeout = list[0];
      if (typeof timeout === 'number' && (timeout > 0 || timeout === -1)) list[0] = 0;
      return list;
    };

    const calls: Array<[string, () => unknown]> = [
      ['Poller', () => {
        const p = Reflect.construct(n.Poller, args(anyValue, anyValue)) as NativePoller;
        if (pollers.length < 4) pollers.push(p);
        else p.close();
      }],
      ['Poller.add', () => Reflect.apply(poller().add, poller(), args(fdValue, anyValue))],
      ['Poller.modify', () => Reflect.apply(poller().modify, poller(), args(fdValue, anyValue))],
      ['Poller.remove', () => Reflect.apply(poller().remove, poller(), args(fdValue))],
      ['Poller.wait', () => Reflect.apply(poller().wait, poller(), nonBlocking(args(anyValue)))],
      ['Poller.addTimer', () => Reflect.apply(poller().addTimer, poller(), args(anyValue))],
      ['Poller.cancelTimer', () => Reflect.apply(poller().cancelTimer, poller(), args(anyValue))],
      ['Poller.now', () => Reflect.apply(poller().now, poller(), args(anyValue))],
      ['Poller.timerCount', () => poller().timerCount],
      ['Poller.enableReadAhead', () => {
        const p = poller();
        const ahead = Reflect.apply(p.enableReadAhead, p, args(anyValue)) as { wants: Int32Array };
        wantsOf.set(p, ahead.wants);
      }],
      ['Poller.setReadTarget', () => Reflect.apply(poller().setReadTarget, poller(), args(anyValue, anyValue))],
      // JS may write anything into the shared wants array: the next wait() must not trust it.
      ['Poller wants array', () => {
        const wants = wantsOf.get(poller());
        if (wants === undefined || wants.length === 0) return;
        const value = pick(numbers);
        wants[Math.floor(random() * Math.min(wants.length, 64))] = random() < 0.5 ? value : Math.floor(random() * 2 ** 32) - 2 ** 31;
      }],
      ['Poller.close', () => {
        if (random() < 0.2) pollers.splice(pollers.indexOf(poller()), 1)[0]?.close();
      }],
      ['TimerHeap', () => heaps.push(Reflect.construct(n.TimerHeap, args(anyValue)) as NativeTimerHeap)],
      ['TimerHeap.schedule', () => Reflect.apply(pick(heaps).schedule, pick(heaps), args(anyValue))],
      ['TimerHeap.cancel', () => Reflect.apply(pick(heaps).cancel, pick(heaps), args(anyValue))],
      ['TimerHeap.expire', () => Reflect.apply(pick(heaps).expire, pick(heaps), args(anyValue, anyValue))],
      ['TimerHeap.peek', () => Reflect.apply(pick(heaps).peek, pick(heaps), args(anyValue))],
      ['TimerHeap.size', () => pick(heaps).size],
      ['listen', () => own(Reflect.apply(n.listen, null, args(anyValue, anyValue, anyValue, anyValue)))],
      ['connect', () => own(Reflect.apply(n.connect, null, args(anyValue, anyValue)))],
      ['accept', () => own(Reflect.apply(n.accept, null, args(fdValue)))],
      ['read', () => Reflect.apply(n.read, null, args(fdValue, anyValue, anyValue, anyValue))],
      ['write', () => Reflect.apply(n.write, null, args(fdValue, anyValue, anyValue, anyValue))],
      ['readBuffer', () => Reflect.apply(n.readBuffer!, null, args(fdValue, anyValue, anyValue, anyValue))],
      ['writeBuffer', () => Reflect.apply(n.writeBuffer!, null, args(fdValue, anyValue, anyValue, anyValue))],
      // The argument block: anything in its slots, anything as the buffer.
      ...(['readBlock', 'writeBlock'] as const).map((name): [string, () => unknown] => [name, () => {
        const block = n.ioBlock!;
        const slots = [fdValue, anyValue, anyValue];
        for (let i = 0; i < 3; i++) {
          const value = slots[i]!();
          block[i] = typeof value === 'number' ? value : NaN;
        }
        return Reflect.apply(n[name]!, null, args(anyValue));
      }]),
      ['writev', () => {
        const buffers = () => (random() < 0.3 ? anyValue() : Array.from({ length: Math.floor(random() * 70) }, anyValue));
        return Reflect.apply(n.writev, null, args(fdValue, buffers, anyValue));
      }],
      ['shutdown', () => Reflect.apply(n.shutdown, null, args(fdValue, anyValue))],
      ['close', () => {
        const list = args(fdValue);
        const result = Reflect.apply(n.close, null, list);
        if (result === 0) owned.delete(list[0] as number);
      }],
      ['socketError', () => Reflect.apply(n.socketError, null, args(fdValue))],
      ['localAddress', () => Reflect.apply(n.localAddress, null, args(fdValue))],
      ['remoteAddress', () => Reflect.apply(n.remoteAddress, null, args(fdValue))],
    ];

    const unexpected: string[] = [];
    const outcomes = new Map<string, number>();
    try {
      for (let i = 0; i < 10_000; i++) {
        const [name, call] = pick(calls);
        try {
          call();
          outcomes.set('returned', (outcomes.get('returned') ?? 0) + 1);
        } catch (error) {
          const kind = (error as Error)?.constructor?.name ?? typeof error;
          outcomes.set(kind, (outcomes.get(kind) ?? 0) + 1);
          if (!isAcceptable(error)) unexpected.push(`${name}: ${String(error)}`);
        }
      }
    } finally {
      for (const p of pollers) p.close();
      for (const fd of owned) n.close(fd);
    }
    expect(unexpected).toEqual([]);
    // The fuzz reached every kind of outcome, not just the first argument check.
    expect(outcomes.get('returned')).toBeGreaterThan(500);
    expect(outcomes.get('TypeError')).toBeGreaterThan(500);
    expect(outcomes.get('RangeError')).toBeGreaterThan(500);
    expect(outcomes.get('Error')).toBeGreaterThan(100);
  });
});
