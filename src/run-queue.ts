/** Something the loop can run once per batch: a task step or a `callSoon` callback. */
export interface Runnable {
  runStep(): void;
}

/**
 * A FIFO ring buffer of runnables. The tick takes `length` when a batch begins and runs exactly
 * that many, so what is queued during the batch waits for the next one.
 */
export class RunQueue {
  private items: (Runnable | undefined)[] = new Array(256);
  private head = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(item: Runnable): void {
    const items = this.items;
    if (this.count === items.length) this.grow();
    this.items[(this.head + this.count) & (this.items.length - 1)] = item;
    this.count++;
  }

  shift(): Runnable {
    const items = this.items;
    const item = items[this.head]!;
    items[this.head] = undefined;
    this.head = (this.head + 1) & (items.length - 1);
    this.count--;
    return item;
  }

  private grow(): void {
    const old = this.items;
    const next: (Runnable | undefined)[] = new Array(old.length * 2);
    for (let i = 0; i < this.count; i++) next[i] = old[(this.head + i) & (old.length - 1)];
    this.items = next;
    this.head = 0;
  }
}
