import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addons } from './addons.js';

// The heap is shared code; both addons carry it, so testing one is enough.
const { TimerHeap } = addons[0]![1];

function drain(heap: InstanceType<typeof TimerHeap>, now: number, size = 64): number[] {
  const out = new Int32Array(size);
  const ids: number[] = [];
  for (;;) {
    const n = heap.expire(now, out);
    ids.push(...out.subarray(0, n));
    if (n < size) return ids;
  }
}

describe('TimerHeap', () => {
  it('expires timers in deadline order, equal deadlines in insertion order', () => {
    const heap = new TimerHeap();
    const c = heap.schedule(30);
    const a1 = heap.schedule(10);
    const b = heap.schedule(20);
    const a2 = heap.schedule(10);
    const a3 = heap.schedule(10);
    expect(heap.peek()).toBe(10);
    expect(drain(heap, 25)).toEqual([a1, a2, a3, b]);
    expect(heap.size).toBe(1);
    expect(drain(heap, 30)).toEqual([c]);
    expect(heap.peek()).toBe(-1);
  });

  it('hands out small dense ids and reuses them after expiry or cancel', () => {
    const heap = new TimerHeap();
    const ids = [heap.schedule(1), heap.schedule(2), heap.schedule(3)];
    expect(ids).toEqual([0, 1, 2]);
    expect(heap.cancel(1)).toBe(true);
    expect(heap.schedule(4)).toBe(1);
    expect(drain(heap, 10)).toEqual([0, 2, 1]);
    expect(new Set([heap.schedule(5), heap.schedule(5), heap.schedule(5)])).toEqual(new Set([0, 1, 2]));
  });

  it('cancel answers false for ids that are not pending', () => {
    const heap = new TimerHeap();
    const id = heap.schedule(5);
    expect(heap.cancel(id)).toBe(true);
    expect(heap.cancel(id)).toBe(false);
    expect(heap.cancel(999)).toBe(false);
    expect(heap.size).toBe(0);
  });

  it('writes no more than the output array holds and keeps the rest', () => {
    const heap = new TimerHeap();
    for (let i = 0; i < 10; i++) heap.schedule(i);
    const out = new Int32Array(4);
    expect(heap.expire(100, out)).toBe(4);
    expect(Array.from(out)).toEqual([0, 1, 2, 3]);
    expect(heap.size).toBe(6);
    expect(heap.expire(100, new Int32Array(0))).toBe(0);
  });

  it('matches a sorted-array model on random schedule, cancel and advance sequences', () => {
    type Command =
      | { kind: 'schedule'; delay: number }
      | { kind: 'cancel'; pick: number }
      | { kind: 'advance'; by: number; room: number };
    const command: fc.Arbitrary<Command> = fc.oneof(
      { weight: 5, arbitrary: fc.record({ kind: fc.constant('schedule' as const), delay: fc.integer({ min: 0, max: 20 }) }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat() }) },
      {
        weight: 2,
        arbitrary: fc.record({ kind: fc.constant('advance' as const), by: fc.integer({ min: 0, max: 10 }), room: fc.integer({ min: 1, max: 8 }) }),
      },
    );
    fc.assert(
      fc.property(fc.array(command, { maxLength: 200 }), (commands) => {
        const heap = new TimerHeap();
        // The model: pending timers in (deadline, sequence) order, found by linear search.
        let model: Array<{ id: number; deadline: number; seq: number }> = [];
        let now = 0;
        let seq = 0;
        for (const c of commands) {
          if (c.kind === 'schedule') {
            const deadline = now + c.delay;
            const id = heap.schedule(deadline);
            expect(model.some((t) => t.id === id)).toBe(false);
            model.push({ id, deadline, seq: seq++ });
            model.sort((x, y) => x.deadline - y.deadline || x.seq - y.seq);
          } else if (c.kind === 'cancel') {
            // Half the picks aim at pending ids, the rest at ids that are not pending.
            const pending = model.length > 0 && c.pick % 2 === 0;
            const id = pending ? model[(c.pick >> 1) % model.length]!.id : 1000 + (c.pick % 100_000);
            expect(heap.cancel(id)).toBe(pending);
            model = model.filter((t) => t.id !== id);
          } else {
            now += c.by;
            const out = new Int32Array(c.room);
            const n = heap.expire(now, out);
            const due = model.filter((t) => t.deadline <= now).slice(0, c.room);
            expect(Array.from(out.subarray(0, n))).toEqual(due.map((t) => t.id));
            model = model.slice(due.length);
          }
          expect(heap.size).toBe(model.length);
          expect(heap.peek()).toBe(model.length > 0 ? model[0]!.deadline : -1);
        }
        expect(drain(heap, Infinity)).toEqual(model.map((t) => t.id));
      }),
      { numRuns: 300 },
    );
  });
});
