import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TimerHeap } from '../src/timers.js';

type Command = { kind: 'schedule'; deadline: number } | { kind: 'cancel'; pick: number } | { kind: 'advance'; by: number };

const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ kind: fc.constant('schedule' as const), deadline: fc.integer({ min: 0, max: 50 }) }),
  fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('advance' as const), by: fc.integer({ min: 0, max: 20 }) }),
);

/**
 * Runs commands against a heap-like object and a sorted-array model, returning both expiry logs as
 * lists of model keys. Shared with the native heap's test.
 */
export function compareWithModel(
  heap: { schedule(d: number): number; cancel(id: number): boolean; expire(now: number, out: Int32Array): number; peek(): number; size: number },
  commands: Command[],
): void {
  // model: entries sorted by (deadline, seq); key is the insertion sequence number
  const model: { deadline: number; seq: number; id: number }[] = [];
  let seq = 0;
  let now = 0;
  const out = new Int32Array(8);
  const idToSeq = new Map<number, number>();
  for (const cmd of commands) {
    if (cmd.kind === 'schedule') {
      const id = heap.schedule(now + cmd.deadline);
      idToSeq.set(id, seq);
      model.push({ deadline: now + cmd.deadline, seq: seq++, id });
      model.sort((a, b) => a.deadline - b.deadline || a.seq - b.seq);
    } else if (cmd.kind === 'cancel') {
      if (model.length === 0) {
        expect(heap.cancel(12345)).toBe(false);
        continue;
      }
      const [victim] = model.splice(cmd.pick % model.length, 1);
      expect(heap.cancel(victim!.id)).toBe(true);
      expect(heap.cancel(victim!.id)).toBe(false);
    } else {
      now += cmd.by;
      const expected = model.filter((e) => e.deadline <= now).map((e) => e.seq);
      model.splice(0, expected.length);
      const got: number[] = [];
      for (;;) {
        const n = heap.expire(now, out);
        for (let i = 0; i < n; i++) got.push(idToSeq.get(out[i]!)!);
        if (n < out.length) break;
      }
      expect(got).toEqual(expected);
    }
    expect(heap.size).toBe(model.length);
    expect(heap.peek()).toBe(model.length === 0 ? -1 : model[0]!.deadline);
  }
}

describe('TimerHeap (JS)', () => {
  it('expires the same timers in the same order as a sorted-array model', () => {
    fc.assert(
      fc.property(fc.array(command, { maxLength: 300 }), (commands) => compareWithModel(new TimerHeap(), commands)),
      { numRuns: 300 },
    );
  });

  it('expires equal deadlines in insertion order', () => {
    const heap = new TimerHeap();
    const ids = [heap.schedule(5), heap.schedule(5), heap.schedule(1), heap.schedule(5)];
    const out = new Int32Array(8);
    expect(Array.from(out.subarray(0, heap.expire(5, out)))).toEqual([ids[2], ids[0], ids[1], ids[3]]);
  });

  it('reuses the ids of expired and cancelled timers', () => {
    const heap = new TimerHeap();
    const a = heap.schedule(1);
    heap.cancel(a);
    expect(heap.schedule(2)).toBe(a);
  });

  it('rejects a deadline that is not a number', () => {
    expect(() => new TimerHeap().schedule(NaN)).toThrow(TypeError);
  });
});
