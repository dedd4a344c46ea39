import { afterEach, describe, expect, it } from 'vitest';
import { ERROR, HANGUP, READABLE, WRITABLE, type NativeBinding, type NativePoller } from '../../src/native.js';
import { addons, expiredTimers, noop, readyTokens, socketPair, type SocketPair } from './addons.js';

describe.each(addons)('Poller (%s)', (_name, n: NativeBinding) => {
  const cleanups: Array<() => void> = [];
  afterEach(() => {
    while (cleanups.length > 0) cleanups.pop()!();
  });
  function poller(onWake: () => void = noop, capacity?: number): NativePoller {
    const p = new n.Poller(onWake, capacity);
    cleanups.push(() => p.close());
    return p;
  }
  async function pair(): Promise<SocketPair> {
    const sockets = await socketPair(n);
    cleanups.push(() => sockets.close());
    return sockets;
  }

  it('exposes events and timers arrays sized by capacity, created once', () => {
    const p = poller(noop, 8);
    expect(p.events).toBeInstanceOf(Int32Array);
    expect(p.events.length).toBe(16);
    expect(p.timers).toBeInstanceOf(Int32Array);
    expect(p.timers.length).toBeGreaterThan(1);
    const { events, timers } = p;
    p.wait(0);
    expect(p.events).toBe(events);
    expect(p.timers).toBe(timers);
  });

  it('rejects a missing onWake with a TypeError and a bad capacity with a RangeError', () => {
    expect(() => new n.Poller(undefined as unknown as () => void)).toThrow(TypeError);
    expect(() => new n.Poller(noop, 0)).toThrow(RangeError);
    expect(() => new n.Poller(noop, 1.5)).toThrow(RangeError);
    expect(() => new n.Poller(noop, 2 ** 21)).toThrow(RangeError);
    const p = poller();
    expect(() => p.wait(-2)).toThrow(RangeError);
    expect(() => p.wait(NaN)).toThrow(RangeError);
    expect(() => p.addTimer(Infinity)).toThrow(RangeError);
    expect(() => p.add(-1, 0)).toThrow(RangeError);
    expect(() => p.add(0, -1)).toThrow(RangeError);
  });

  it('reports a connected socket as writable under its token', async () => {
    const p = poller();
    const s = await pair();
    p.add(s.client, 7);
    const ready = readyTokens(p, p.wait(1000));
    expect(ready.get(7)! & WRITABLE).toBe(WRITABLE);
    expect(ready.get(7)! & READABLE).toBe(0);
    p.remove(s.client);
  });

  it('reports readable under the token once data arrives', async () => {
    const p = poller();
    const s = await pair();
    p.add(s.server, 3);
    p.wait(0);
    expect(n.write(s.client, Buffer.from('ping'), 0, 4)).toBe(4);
    const ready = readyTokens(p, p.wait(1000));
    expect(ready.get(3)! & READABLE).toBe(READABLE);
    const buf = Buffer.alloc(16);
    expect(n.read(s.server, buf, 0, 16)).toBe(4);
    expect(buf.toString('utf8', 0, 4)).toBe('ping');
    p.remove(s.server);
  });

  /** A poller with read-ahead on and one connected pair, its server side registered as `token`. */
  async function readAheadPair(token: number) {
    const p = poller();
    const s = await pair();
    const ahead = p.enableReadAhead(8);
    p.add(s.server, token);
    p.wait(0);
    return { p, s, ahead };
  }

  /** Asks the next wait to read up to `bytes` for `token`, at `offset` in its target. */
  function ask(ahead: { wants: Int32Array }, token: number, bytes: number, offset = 0): void {
    ahead.wants[2 * token] = bytes;
    ahead.wants[2 * token + 1] = offset;
  }

  /** Sends `text` from `client`, waits for the edge, and returns `token`'s event index. */
  function sendAndPoll(p: NativePoller, client: number, text: string, token: number): number {
    expect(n.write(client, Buffer.from(text), 0, text.length)).toBe(text.length);
    return eventOf(p, p.wait(1000), token);
  }

  /** The event index of `token` in the last wait's `count` pairs (-1: not reported). */
  function eventOf(p: NativePoller, count: number, token: number): number {
    for (let i = 0; i < count; i++) if (p.events[2 * i] === token && (p.events[2 * i + 1]! & READABLE) !== 0) return i;
    return -1;
  }

  it('reads ahead into the target asked for, once per ask, and reports what it read', async () => {
    const { p, s, ahead } = await readAheadPair(3);
    expect(ahead.wants.length).toBeGreaterThanOrEqual(16);
    expect(ahead.results.length).toBe(p.events.length);
    const target = new Uint8Array(32).fill(0xee);
    p.setReadTarget(3, target);
    ask(ahead, 3, 10, 5); // up to 10 bytes at offset 5
    let i = sendAndPoll(p, s.client, 'hello world, more', 3);
    expect(i).toBeGreaterThanOrEqual(0);
    expect(ahead.results[2 * i]).toBe(10);
    expect(ahead.results[2 * i + 1]).toBe(10);
    expect(Buffer.from(target.subarray(5, 15)).toString()).toBe('hello worl');
    expect(target[4]).toBe(0xee);
    expect(target[15]).toBe(0xee);
    // The ask was used up: the next edge is reported unread, and the rest stays in the socket.
    expect(ahead.wants[6]).toBe(0);
    i = sendAndPoll(p, s.client, '!', 3);
    expect(ahead.results[2 * i]).toBe(ahead.notRead);
    const rest = Buffer.alloc(16);
    expect(n.read(s.server, rest, 0, 16)).toBe(8);
    expect(rest.toString('utf8', 0, 8)).toBe('d, more!');
    // A drained socket: an ask bigger than what came reads what came, fewer than asked.
    ask(ahead, 3, 32);
    i = sendAndPoll(p, s.client, 'abc', 3);
    expect([ahead.results[2 * i], ahead.results[2 * i + 1]]).toEqual([3, 32]);
    expect(Buffer.from(target.subarray(0, 3)).toString()).toBe('abc');
    p.remove(s.server);
  });

  it('reads ahead only inside the target, whatever numbers the wants array holds', async () => {
    // JS can write anything into wants: every ask that does not fit the 32-byte view is skipped,
    // one that fits reads there, and the bytes around the view are never touched. Offset -1 is a
    // packed ask: it reads at the view's first free byte (its start: it is the only one), cut to fit.
    const { p, s, ahead } = await readAheadPair(2);
    const backing = new Uint8Array(64).fill(0xee);
    const target = backing.subarray(16, 48);
    p.setReadTarget(2, target);
    const numbers = [0, 1, 2, 31, 32, 33, 48, 64, -1, -32, 2 ** 31 - 1, -(2 ** 31), 2 ** 30, 1 << 16];
    let seed = 7;
    const pick = () => numbers[(seed = (seed * 1103515245 + 12345) % 2 ** 31) % numbers.length]!;
    let read = 0;
    for (let round = 0; round < 300; round++) {
      const [bytes, offset] = [pick(), pick()];
      target.fill(0);
      ask(ahead, 2, bytes, offset);
      const i = sendAndPoll(p, s.client, 'q', 2);
      const r = ahead.results[2 * i];
      const packed = offset === -1;
      const fits = bytes > 0 && (packed || (offset >= 0 && offset + bytes <= 32));
      if (fits) {
        expect(r).toBe(1);
        expect(target[packed ? 0 : offset]).toBe('q'.charCodeAt(0));
        if (packed) expect([ahead.results[2 * i + 1], ahead.wants[2 * 2 + 1]]).toEqual([Math.min(bytes, 32), 0]);
        read++;
      } else {
        expect([bytes, offset, r]).toEqual([bytes, offset, ahead.notRead]);
        expect(n.read(s.server, Buffer.alloc(1), 0, 1)).toBe(1); // drained by hand
        expect(target.every((b) => b === 0)).toBe(true);
      }
      expect(backing.subarray(0, 16).every((b) => b === 0xee)).toBe(true);
      expect(backing.subarray(48).every((b) => b === 0xee)).toBe(true);
    }
    expect(read).toBeGreaterThan(20);
    expect(read).toBeLessThan(280);
    p.remove(s.server);
  });

  it('packs the reads of packed asks one after another into their target, each cut to fit', async () => {
    // Four sockets ask packed into one 16-byte view: the first two land at 0 and 5 (where each
    // landed is written back in place of the offset), the third is cut to the 4 bytes left, the
    // fourth finds no room and is reported unread. The bytes around the view stay untouched.
    const p = poller();
    const ahead = p.enableReadAhead(8);
    const pairs = [await pair(), await pair(), await pair(), await pair()];
    pairs.forEach((s, k) => p.add(s.server, 4 + k));
    p.wait(0);
    const backing = new Uint8Array(24).fill(0x2d);
    const target = backing.subarray(4, 20);
    const texts = ['aaaaa', 'bbbbbbb', 'cccccccc', 'dd'];
    pairs.forEach((s, k) => {
      p.setReadTarget(4 + k, target);
      ask(ahead, 4 + k, 64, -1);
      expect(n.write(s.client, Buffer.from(texts[k]!), 0, texts[k]!.length)).toBe(texts[k]!.length);
    });
    // Loopback has queued the bytes by now; all four are reported by one wait, in some order.
    await new Promise((resolve) => setTimeout(resolve, 10));
    const count = p.wait(0);
    expect(count).toBe(4);
    let free = 0; // the model: where the next packed read lands
    for (let i = 0; i < count; i++) {
      const k = p.events[2 * i]! - 4;
      const text = texts[k]!;
      if (free === 16) {
        expect(ahead.results[2 * i]).toBe(ahead.notRead);
        continue;
      }
      const asked = Math.min(64, 16 - free); // the ask, cut to the room left
      const fit = Math.min(text.length, asked);
      expect([ahead.results[2 * i], ahead.results[2 * i + 1], ahead.wants[2 * (4 + k) + 1]]).toEqual([fit, asked, free]);
      expect(Buffer.from(target.subarray(free, free + fit)).toString()).toBe(text.slice(0, fit));
      free += fit;
    }
    expect(free).toBe(16); // 22 bytes were sent: the view is full
    expect(backing.subarray(0, 4).every((b) => b === 0x2d)).toBe(true);
    expect(backing.subarray(20).every((b) => b === 0x2d)).toBe(true);
    pairs.forEach((s) => p.remove(s.server));
  });

  it('reads ahead for targets that view one ArrayBuffer, each into its own view, until it is detached', async () => {
    // Views of one buffer share the addon's hold on it, and one wait looks the buffer up once for
    // all of them: each read still lands in its own view, a token that lets go leaves the others
    // reading, and a detach stops every one of them.
    const p = poller();
    const ahead = p.enableReadAhead(8);
    const pairs = [await pair(), await pair(), await pair()];
    pairs.forEach((s, k) => p.add(s.server, 1 + k));
    p.wait(0);
    const memory = new ArrayBuffer(40);
    const bytes = new Uint8Array(memory).fill(0x2d);
    const views = [0, 1, 2].map((k) => new Uint8Array(memory, 4 + 12 * k, 8));
    // Each round: ask for every token still held, send to it, and check where the bytes landed.
    const round = async (tokens: number[], text: (k: number) => string) => {
      for (const token of tokens) {
        ask(ahead, token, 8);
        expect(n.write(pairs[token - 1]!.client, Buffer.from(text(token)), 0, 3)).toBe(3);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
      const count = p.wait(0);
      return tokens.map((token) => ahead.results[2 * eventOf(p, count, token)]);
    };
    views.forEach((view, k) => p.setReadTarget(1 + k, view));
    expect(await round([1, 2, 3], (token) => `${token}${token}${token}`)).toEqual([3, 3, 3]);
    expect(Buffer.from(bytes).toString()).toBe('----111---------222---------333---------');
    // Token 2 takes a buffer of its own, token 3 goes away: token 1 still reads into the shared one.
    const own = new Uint8Array(8);
    p.setReadTarget(2, own);
    p.remove(pairs[2]!.server);
    expect(await round([1, 2], (token) => `${'ab'[token - 1]!.repeat(3)}`)).toEqual([3, 3]);
    expect(Buffer.from(bytes.subarray(4, 7)).toString()).toBe('aaa');
    expect(Buffer.from(own.subarray(0, 3)).toString()).toBe('bbb');
    // Token 2 views the shared buffer again; then the buffer is transferred away: nothing is read.
    p.setReadTarget(2, views[1]!);
    structuredClone(memory, { transfer: [memory] });
    expect(await round([1, 2], () => 'zzz')).toEqual([ahead.notRead, ahead.notRead]);
    for (const token of [1, 2]) {
      const got = Buffer.alloc(8);
      expect(n.read(pairs[token - 1]!.server, got, 0, 8)).toBe(3);
      expect(got.subarray(0, 3).toString()).toBe('zzz');
    }
    p.remove(pairs[0]!.server);
    p.remove(pairs[1]!.server);
  });

  it('reads ahead into a view at its own offset, and not past a resizable buffer shrunk since', async () => {
    const { p, s, ahead } = await readAheadPair(3);
    const backing = new Uint8Array(32).fill(0x2d);
    p.setReadTarget(3, backing.subarray(10, 20));
    ask(ahead, 3, 4, 2);
    let i = sendAndPoll(p, s.client, 'abcd', 3);
    expect(ahead.results[2 * i]).toBe(4);
    expect(Buffer.from(backing).toString()).toBe('------------abcd----------------');
    const ResizableBuffer = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer & { resize(n: number): void };
    const resizable = new ResizableBuffer(64, { maxByteLength: 64 });
    p.setReadTarget(3, new Uint8Array(resizable));
    resizable.resize(8);
    ask(ahead, 3, 16);
    i = sendAndPoll(p, s.client, 'efgh', 3);
    expect(ahead.results[2 * i]).toBe(ahead.notRead);
    p.remove(s.server);
  });

  it.each([['the default', undefined], ['a budget of 8 KiB', 8192]] as const)('stops reading ahead once one wait has read its budget (%s), and leaves the later asks in place', async (_what, budget) => {
    // Six connections with a quarter of the budget each waiting: the first four events read
    // (the budget is spent exactly), the last two are reported unread with their bytes still
    // in the socket and their asks untouched, for the readers to read themselves.
    const p = poller();
    const ahead = p.enableReadAhead(8, budget);
    expect(ahead.budget).toBe(budget ?? 128 * 1024);
    // Asking for more tokens later keeps the budget; a budget out of range is refused.
    expect(p.enableReadAhead(16).budget).toBe(ahead.budget);
    expect(() => p.enableReadAhead(8, 0)).toThrow(RangeError);
    expect(() => p.enableReadAhead(8, 64 * 1024 * 1024 + 1)).toThrow(RangeError);
    expect(() => p.enableReadAhead(8, 1.5)).toThrow(RangeError);
    const chunk = ahead.budget / 4;
    const pairs: SocketPair[] = [];
    const targets: Uint8Array[] = [];
    for (let token = 0; token < 6; token++) {
      const s = await pair();
      pairs.push(s);
      p.add(s.server, token);
      targets.push(new Uint8Array(chunk));
      p.setReadTarget(token, targets[token]!);
    }
    p.wait(0);
    for (let token = 0; token < 6; token++) {
      ask(ahead, token, chunk);
      const bytes = Buffer.alloc(chunk, 0x61 + token);
      let sent = 0;
      while (sent < chunk) {
        const r = n.write(pairs[token]!.client, bytes, sent, chunk - sent);
        expect(r).toBeGreaterThan(0);
        sent += r;
      }
    }
    // Every server side is readable now (loopback delivers within write): one wait sees all six.
    const count = p.wait(1000);
    expect(count).toBe(6);
    const read = [];
    for (let i = 0; i < count; i++) {
      const token = p.events[2 * i]!;
      if (i < 4) {
        expect(ahead.results[2 * i]).toBe(chunk);
        expect(targets[token]!.every((b) => b === 0x61 + token)).toBe(true);
        expect(ahead.wants[2 * token]).toBe(0);
        read.push(token);
      } else {
        expect(ahead.results[2 * i]).toBe(ahead.notRead);
        expect(ahead.wants[2 * token]).toBe(chunk);
        expect(targets[token]!.every((b) => b === 0)).toBe(true);
        const got = Buffer.alloc(chunk);
        let n2 = 0;
        while (n2 < chunk) {
          const r = n.read(pairs[token]!.server, got, n2, chunk - n2);
          expect(r).toBeGreaterThan(0);
          n2 += r;
        }
        expect(got.every((b) => b === 0x61 + token)).toBe(true);
      }
    }
    expect(read.length).toBe(4);
    for (const s of pairs) p.remove(s.server);
  });

  it('reads ahead 0 at end of stream', async () => {
    const { p, s, ahead } = await readAheadPair(2);
    p.setReadTarget(2, new Uint8Array(8));
    ask(ahead, 2, 8);
    n.shutdown(s.client, 1);
    const i = eventOf(p, p.wait(1000), 2);
    expect(ahead.results[2 * i]).toBe(0);
    p.remove(s.server);
  });

  it('skips a read ahead whose target no longer holds the bytes asked for', async () => {
    const { p, s, ahead } = await readAheadPair(1);
    // No target at all.
    ask(ahead, 1, 4);
    let i = sendAndPoll(p, s.client, 'x', 1);
    expect(ahead.results[2 * i]).toBe(ahead.notRead);
    // Offset + ask past the end.
    p.setReadTarget(1, new Uint8Array(8));
    ask(ahead, 1, 4, 6);
    i = sendAndPoll(p, s.client, 'y', 1);
    expect(ahead.results[2 * i]).toBe(ahead.notRead);
    // A target transferred away (detached) since it was set.
    const moved = new Uint8Array(64);
    p.setReadTarget(1, moved);
    structuredClone(moved.buffer, { transfer: [moved.buffer] });
    ask(ahead, 1, 4);
    i = sendAndPoll(p, s.client, 'z', 1);
    expect(ahead.results[2 * i]).toBe(ahead.notRead);
    // A view of a SharedArrayBuffer is never read into ahead.
    p.setReadTarget(1, new Uint8Array(new SharedArrayBuffer(16)));
    ask(ahead, 1, 4);
    i = sendAndPoll(p, s.client, 'w', 1);
    expect(ahead.results[2 * i]).toBe(ahead.notRead);
    // Nothing was consumed by the skipped reads.
    const got = Buffer.alloc(8);
    expect(n.read(s.server, got, 0, 8)).toBe(4);
    expect(got.toString('utf8', 0, 4)).toBe('xyzw');
    p.remove(s.server);
  });

  it('forgets the ask and the target when the fd is removed, so a reused token reads nothing', async () => {
    const p = poller();
    const a = await pair();
    const b = await pair();
    const ahead = p.enableReadAhead(8);
    p.add(a.server, 4);
    p.setReadTarget(4, new Uint8Array(8));
    ask(ahead, 4, 8);
    p.remove(a.server);
    expect(ahead.wants[8]).toBe(0);
    p.add(b.server, 4);
    p.wait(0);
    ask(ahead, 4, 8); // an ask without a target of its own
    const i = sendAndPoll(p, b.client, 'q', 4);
    expect(ahead.results[2 * i]).toBe(ahead.notRead);
    p.remove(b.server);
  });

  it('grows the wants array on demand, keeping the asks already made', () => {
    const p = poller();
    expect(() => p.setReadTarget(0, new Uint8Array(1))).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
    const first = p.enableReadAhead(4);
    first.wants[2] = 77;
    const grown = p.enableReadAhead(5000);
    expect(grown.wants.length).toBeGreaterThanOrEqual(10_000);
    expect(grown.wants[2]).toBe(77);
    expect(grown.results.buffer).toBe(first.results.buffer);
    expect(() => p.setReadTarget(4999, new Uint8Array(1))).not.toThrow();
    expect(() => p.setReadTarget(grown.wants.length, new Uint8Array(1))).toThrow(RangeError);
    expect(() => p.setReadTarget(0, new Uint16Array(1) as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => p.enableReadAhead(0)).toThrow(RangeError);
  });

  it('is edge-triggered: no second report without new data, a new report after it', async () => {
    const p = poller();
    const s = await pair();
    p.add(s.server, 1);
    p.wait(0);
    n.write(s.client, Buffer.from('a'), 0, 1);
    expect(readyTokens(p, p.wait(1000)).get(1)! & READABLE).toBe(READABLE);
    // Not read yet, but already reported: edge-triggered registration stays silent.
    expect(p.wait(0)).toBe(0);
    expect(p.wait(20)).toBe(0);
    n.write(s.client, Buffer.from('b'), 0, 1);
    expect(readyTokens(p, p.wait(1000)).get(1)! & READABLE).toBe(READABLE);
    p.remove(s.server);
  });

  it('reports hangup with readable when the peer closes', async () => {
    const p = poller();
    const s = await pair();
    p.add(s.server, 5);
    p.wait(0);
    n.shutdown(s.client, 1);
    const bits = readyTokens(p, p.wait(1000)).get(5)!;
    expect(bits & HANGUP).toBe(HANGUP);
    expect(bits & READABLE).toBe(READABLE);
    expect(n.read(s.server, Buffer.alloc(4), 0, 4)).toBe(0);
    p.remove(s.server);
  });

  it('reports data and a hangup in one edge, with no further edge for the pending end of stream', async () => {
    const p = poller();
    const s = await pair();
    p.add(s.server, 5);
    p.wait(0);
    n.write(s.client, Buffer.from('abc'), 0, 3);
    n.shutdown(s.client, 1);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(readyTokens(p, p.wait(1000)).get(5)! & (READABLE | HANGUP)).toBe(READABLE | HANGUP);
    const buf = Buffer.alloc(64);
    // A short read, yet not drained: the end of stream is still queued...
    expect(n.read(s.server, buf, 0, buf.length)).toBe(3);
    // ...and announces itself with no new edge, so a reader that saw HANGUP must read on to 0.
    expect(p.wait(20)).toBe(0);
    expect(n.read(s.server, buf, 0, buf.length)).toBe(0);
    p.remove(s.server);
  });

  it('modify gives a registered fd a new token', async () => {
    const p = poller();
    const s = await pair();
    p.add(s.client, 1);
    p.wait(0);
    p.modify(s.client, 2);
    const ready = readyTokens(p, p.wait(1000));
    expect(ready.has(2)).toBe(true);
    expect(ready.has(1)).toBe(false);
    p.remove(s.client);
  });

  it('reports at most capacity pairs per wait and the rest in the next', async () => {
    const p = poller(noop, 1);
    const a = await pair();
    const b = await pair();
    p.add(a.client, 1);
    p.add(b.client, 2);
    const first = p.wait(1000);
    expect(first).toBe(1);
    const token = p.events[0];
    expect(p.wait(1000)).toBe(1);
    expect(p.events[0]).not.toBe(token);
    p.remove(a.client);
    p.remove(b.client);
  });

  it('rounds a 0.4 ms timeout up: the timer 0.4 ms away is reported without spinning', () => {
    const p = poller();
    const id = p.addTimer(0.4);
    const start = p.now();
    let waits = 0;
    while (p.timers[0] === 0 && waits < 100) {
      p.wait(0.4);
      waits++;
    }
    expect(expiredTimers(p)).toEqual([id]);
    expect(p.now() - start).toBeGreaterThanOrEqual(0.4);
    // A timeout rounded down to 0 would need many waits; rounded up, one (or two on a late clock).
    expect(waits).toBeLessThanOrEqual(2);
  });

  it('wait(-1) with only a timer sleeps until its deadline and reports it', () => {
    const p = poller();
    const start = p.now();
    const id = p.addTimer(15);
    expect(p.wait(-1)).toBe(0);
    expect(expiredTimers(p)).toEqual([id]);
    expect(p.now() - start).toBeGreaterThanOrEqual(15);
    expect(p.timerCount).toBe(0);
  });

  it('a positive timeout is bounded by the earliest timer', () => {
    const p = poller();
    const start = p.now();
    const id = p.addTimer(10);
    p.wait(10_000);
    expect(expiredTimers(p)).toEqual([id]);
    expect(p.now() - start).toBeLessThan(5_000);
  });

  it('expires timers in deadline order, equal deadlines in insertion order', () => {
    const p = poller();
    const late = p.addTimer(6);
    const first = p.addTimer(2);
    const second = p.addTimer(2);
    const third = p.addTimer(2);
    const early = p.addTimer(0);
    const seen: number[] = [];
    while (seen.length < 5) {
      p.wait(-1);
      seen.push(...expiredTimers(p));
    }
    expect(seen.slice(0, 1)).toEqual([early]);
    // Timers created in one synchronous run get (nearly) the same deadline: the 2 ms ones may
    // come out in one batch or several, but always in insertion order.
    expect(seen.slice(1, 4)).toEqual([first, second, third]);
    expect(seen[4]).toBe(late);
  });

  it('cancelTimer stops a pending timer and answers false once it is gone', () => {
    const p = poller();
    const keep = p.addTimer(1);
    const drop = p.addTimer(1);
    expect(p.timerCount).toBe(2);
    expect(p.cancelTimer(drop)).toBe(true);
    expect(p.cancelTimer(drop)).toBe(false);
    expect(p.timerCount).toBe(1);
    p.wait(-1);
    expect(expiredTimers(p)).toEqual([keep]);
    expect(p.cancelTimer(keep)).toBe(false);
    expect(p.cancelTimer(123_456)).toBe(false);
  });

  it('keeps expired timers that do not fit the timers array for the next wait', () => {
    const p = poller();
    const slots = p.timers.length - 1;
    const ids = Array.from({ length: slots + 10 }, () => p.addTimer(0));
    expect(p.wait(0)).toBe(0);
    const seen = expiredTimers(p);
    expect(seen.length).toBe(slots);
    p.wait(0);
    seen.push(...expiredTimers(p));
    expect(seen).toEqual(ids);
  });

  it('throws Node-style errors for failed registrations', () => {
    const p = poller();
    const closed = n.listen('127.0.0.1', 0, 1, false);
    n.close(closed);
    let error: (Error & { code?: string; errno?: number; syscall?: string }) | undefined;
    try {
      p.add(closed, 2);
    } catch (e) {
      error = e as typeof error;
    }
    expect(error).toBeInstanceOf(Error);
    expect(error!.code).toBe('EBADF');
    expect(error!.errno).toBe(-9);
    expect(['epoll_ctl', 'kevent']).toContain(error!.syscall);
    expect(error!.message).toBe(`${error!.syscall} EBADF`);
    expect(() => p.remove(closed)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('throws ERR_POLLER_CLOSED after close(), which is idempotent', () => {
    const p = poller();
    p.addTimer(100);
    p.close();
    p.close();
    expect(p.timerCount).toBe(0);
    expect(typeof p.now()).toBe('number');
    for (const call of [() => p.wait(0), () => p.add(0, 1), () => p.remove(0), () => p.addTimer(1), () => p.cancelTimer(0)]) {
      expect(call).toThrow(expect.objectContaining({ code: 'ERR_POLLER_CLOSED' }));
    }
  });

  it('keeps its arrays through a transfer: the memory wait() writes cannot be taken from under it', async () => {
    // The arrays are the addon's memory (external ArrayBuffers, which Node will not transfer: it
    // copies them), so wait() writes without checking for a detach first.
    const s = await pair();
    const p = poller();
    const ahead = p.enableReadAhead(8);
    for (const array of [p.events, p.timers, ahead.wants, ahead.results]) {
      const length = array.buffer.byteLength;
      const copy = structuredClone(array.buffer, { transfer: [array.buffer as ArrayBuffer] });
      expect(copy.byteLength).toBe(length);
      expect(array.buffer.byteLength).toBe(length);
    }
    p.add(s.server, 7);
    n.write(s.client, Buffer.from('x'), 0, 1);
    let ready = new Map<number, number>();
    for (let i = 0; i < 50 && !ready.has(7); i++) {
      ready = readyTokens(p, p.wait(10));
    }
    expect((ready.get(7) ?? 0) & READABLE).toBe(READABLE);
  });

  it('calls onWake from the event loop for a readable fd while timers and promises keep working', async () => {
    const s = await pair();
    const woke: Array<Map<number, number>> = [];
    let resolveRead!: () => void;
    const readSeen = new Promise<void>((resolve) => (resolveRead = resolve));
    const p = poller(() => {
      const ready = readyTokens(p, p.wait(0));
      woke.push(ready);
      if (((ready.get(9) ?? 0) & READABLE) !== 0) resolveRead();
    });
    p.add(s.server, 9);
    let timeoutFired = false;
    setTimeout(() => (timeoutFired = true), 1);
    await new Promise((resolve) => setTimeout(resolve, 10));
    await Promise.resolve();
    n.write(s.client, Buffer.from('x'), 0, 1);
    await readSeen;
    expect(timeoutFired).toBe(true);
    expect(woke.some((ready) => ready.has(9))).toBe(true);
    p.remove(s.server);
  });

  it('calls onWake from the event loop when a timer expires, and microtasks run after it', async () => {
    const fired: number[] = [];
    let microtaskRan = false;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const p = poller(() => {
      p.wait(0);
      fired.push(...expiredTimers(p));
      if (fired.length > 0) {
        queueMicrotask(() => {
          microtaskRan = true;
          done();
        });
      }
    });
    const start = p.now();
    const id = p.addTimer(20);
    await finished;
    expect(fired).toEqual([id]);
    expect(microtaskRan).toBe(true);
    expect(p.now() - start).toBeGreaterThanOrEqual(20);
  });

  it('reports a refused connect through writable/error bits and socketError', async () => {
    const p = poller();
    const listener = n.listen('127.0.0.1', 0, 1, false);
    const port = n.localAddress(listener).port;
    n.close(listener);
    let fd: number;
    try {
      fd = n.connect('127.0.0.1', port);
    } catch (e) {
      // Loopback may refuse synchronously.
      expect((e as { code: string }).code).toBe('ECONNREFUSED');
      return;
    }
    cleanups.push(() => n.close(fd));
    p.add(fd, 4);
    const bits = readyTokens(p, p.wait(1000)).get(4)!;
    expect(bits & (ERROR | HANGUP)).not.toBe(0);
    expect(n.socketError(fd)).toBe(-111);
    p.remove(fd);
  });
});
