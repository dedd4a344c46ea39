import { performance } from 'node:perf_hooks';

/**
 * A binary min-heap of timers ordered by (deadline, insertion sequence), so that timers with equal
 * deadlines expire in the order they were scheduled (libuv's rule). Ids are small integers reused
 * through a free list; `pos[id]` locates a timer in the heap, which makes `cancel` O(log n).
 *
 * Both backends keep their timers here. The arrays are typed and grow by doubling: a heap of a
 * million timers is a few flat buffers, not a million boxed numbers in arrays with holes.
 */
export class TimerHeap {
  /** heap[0..count) are timer ids. */
  private heap = new Int32Array(64);
  private count = 0;
  /** Per id: deadline, insertion sequence, and index in `heap` (-1 when the id is free). */
  private deadline = new Float64Array(64);
  private seq = new Float64Array(64);
  private pos = new Int32Array(64).fill(-1);
  /** Ids in use or freed so far; free ones are chained through `nextFree`. */
  private ids = 0;
  private nextFree = new Int32Array(64);
  private freeHead = -1;
  private nextSeq = 0;

  get size(): number {
    return this.count;
  }

  /** The earliest deadline, or -1 when empty. */
  peek(): number {
    return this.count === 0 ? -1 : this.deadline[this.heap[0]!]!;
  }

  schedule(deadline: number): number {
    if (typeof deadline !== 'number' || Number.isNaN(deadline)) throw new TypeError('deadline must be a number');
    let id: number;
    if (this.freeHead >= 0) {
      id = this.freeHead;
      this.freeHead = this.nextFree[id]!;
    } else {
      id = this.ids++;
      if (id === this.pos.length) this.growIds();
    }
    this.deadline[id] = deadline;
    this.seq[id] = this.nextSeq++;
    if (this.count === this.heap.length) this.heap = grow(this.heap, this.heap.length * 2);
    const i = this.count++;
    this.heap[i] = id;
    this.pos[id] = i;
    this.up(i);
    return id;
  }

  /** Removes a pending timer. Returns false for an id that is not pending. */
  cancel(id: number): boolean {
    if (!(id >= 0 && id < this.ids)) return false;
    const i = this.pos[id]!;
    if (i < 0) return false;
    this.removeAt(i);
    return true;
  }

  /**
   * Removes the timers whose deadline is <= now, earliest first, writing their ids into `out`
   * from `offset` on (at most until `out` is full: the rest stay for the next call).
   * Returns how many were written.
   */
  expire(now: number, out: Int32Array, offset = 0): number {
    let n = 0;
    const heap = this.heap;
    while (this.count > 0 && offset + n < out.length) {
      const id = heap[0]!;
      if (this.deadline[id]! > now) break;
      out[offset + n++] = id;
      this.removeAt(0);
    }
    return n;
  }

  private removeAt(i: number): void {
    const heap = this.heap;
    const id = heap[i]!;
    const last = heap[--this.count]!;
    this.pos[id] = -1;
    this.nextFree[id] = this.freeHead;
    this.freeHead = id;
    if (i < this.count) {
      heap[i] = last;
      this.pos[last] = i;
      this.down(i);
      this.up(i);
    }
  }

  private less(a: number, b: number): boolean {
    const da = this.deadline[a]!;
    const db = this.deadline[b]!;
    return da < db || (da === db && this.seq[a]! < this.seq[b]!);
  }

  private up(i: number): void {
    const heap = this.heap;
    const id = heap[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (!this.less(id, p)) break;
      heap[i] = p;
      this.pos[p] = i;
      i = parent;
    }
    heap[i] = id;
    this.pos[id] = i;
  }

  private down(i: number): void {
    const heap = this.heap;
    const n = this.count;
    const id = heap[i]!;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && this.less(heap[child + 1]!, heap[child]!)) child++;
      const c = heap[child]!;
      if (!this.less(c, id)) break;
      heap[i] = c;
      this.pos[c] = i;
      i = child;
    }
    heap[i] = id;
    this.pos[id] = i;
  }

  private growIds(): void {
    const size = this.pos.length * 2;
    this.deadline = grow(this.deadline, size);
    this.seq = grow(this.seq, size);
    this.nextFree = grow(this.nextFree, size);
    const pos = new Int32Array(size).fill(-1);
    pos.set(this.pos);
    this.pos = pos;
  }
}

function grow<A extends Int32Array | Float64Array>(array: A, size: number): A {
  const next = new (array.constructor as new (n: number) => A)(size);
  next.set(array);
  return next;
}

/** How many expired ids one poll reports; the rest stay due for the next. */
const EXPIRED_CAPACITY = 4096;

/**
 * The timers of a backend, on performance.now()'s clock: both backends keep them in JS (a call
 * into the addon per sleep cost more than the C++ heap saved; see src/backend/native.ts) and
 * differ only in how they get woken at the earliest deadline.
 */
export class BackendTimers {
  /** Expired ids written by `collect`: [0] holds the count, the ids follow. Allocated once. */
  readonly expired = new Int32Array(EXPIRED_CAPACITY + 1);
  private readonly heap = new TimerHeap();

  now(): number {
    return performance.now();
  }

  add(delayMs: number): number {
    return this.heap.schedule(performance.now() + delayMs);
  }

  cancel(id: number): boolean {
    return this.heap.cancel(id);
  }

  /** Moves the timers due at `now` into `expired`. */
  collect(now: number): void {
    this.expired[0] = this.heap.size === 0 ? 0 : this.heap.expire(now, this.expired, 1);
  }

  /** Whether a timer is pending (else `collect` has nothing to look at, whatever the time). */
  get pending(): boolean {
    return this.heap.size > 0;
  }

  /** The earliest deadline, or -1 when none is pending. */
  earliest(): number {
    return this.heap.peek();
  }
}
