/**
 * A binary min-heap of timers ordered by (deadline, insertion sequence), so that timers with equal
 * deadlines expire in the order they were scheduled (libuv's rule). Ids are small integers reused
 * through a free list; `pos[id]` locates a timer in the heap, which makes `cancel` O(log n).
 *
 * The pure-JS backend runs on it; native/timer_heap.cc is the same structure in C++.
 */
export class TimerHeap {
  /** heap[i] is a timer id. */
  private heap: number[] = [];
  private deadline: number[] = [];
  private seq: number[] = [];
  /** pos[id] is the id's index in `heap`, or -1 when the id is free. */
  private pos: number[] = [];
  private free: number[] = [];
  private nextSeq = 0;

  get size(): number {
    return this.heap.length;
  }

  /** The earliest deadline, or -1 when empty. */
  peek(): number {
    return this.heap.length === 0 ? -1 : this.deadline[this.heap[0]!]!;
  }

  schedule(deadline: number): number {
    if (typeof deadline !== 'number' || Number.isNaN(deadline)) throw new TypeError('deadline must be a number');
    const id = this.free.length > 0 ? this.free.pop()! : this.pos.length;
    this.deadline[id] = deadline;
    this.seq[id] = this.nextSeq++;
    const i = this.heap.length;
    this.heap.push(id);
    this.pos[id] = i;
    this.up(i);
    return id;
  }

  /** Removes a pending timer. Returns false for an id that is not pending. */
  cancel(id: number): boolean {
    const i = this.pos[id];
    if (i === undefined || i < 0) return false;
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
    while (heap.length > 0 && offset + n < out.length) {
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
    const last = heap.pop()!;
    this.pos[id] = -1;
    this.free.push(id);
    if (i < heap.length) {
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
    const n = heap.length;
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
}
