import * as net from 'node:net';
import { constants } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { JsBackend } from '../../src/backend/js.js';
import { ERROR, HANGUP, READABLE, WRITABLE } from '../../src/native.js';

const { EAGAIN, EBADF, ECONNREFUSED, ECONNRESET, EPIPE } = constants.errno;
const HOST = '127.0.0.1';
const LISTENER = 1000;

/**
 * Drives a JsBackend the way the loop does: wait for its onWake, then poll. Events are ORed per
 * token into `seen` until a test takes them.
 */
class Harness {
  wakes = 0;
  readonly seen = new Map<number, number>();
  readonly backend: JsBackend;
  private readonly fds = new Set<number>();
  private waiter: (() => void) | null = null;

  constructor() {
    this.backend = new JsBackend(() => {
      this.wakes++;
      const waiter = this.waiter;
      this.waiter = null;
      waiter?.();
    });
  }

  get s() {
    return this.backend.sockets;
  }

  /** Remembers `fd` so that it is closed after the test if the test did not close it. */
  own(fd: number): number {
    if (fd >= 0) this.fds.add(fd);
    return fd;
  }

  close(fd: number): void {
    this.fds.delete(fd);
    expect(this.s.close(fd)).toBe(0);
  }

  /** One poll: its pairs, also ORed into `seen`. */
  poll(): Array<[number, number]> {
    const n = this.backend.poll();
    const events = this.backend.events;
    const batch: Array<[number, number]> = [];
    for (let i = 0; i < n; i++) {
      const token = events[2 * i]!;
      const bits = events[2 * i + 1]!;
      batch.push([token, bits]);
      this.seen.set(token, (this.seen.get(token) ?? 0) | bits);
    }
    return batch;
  }

  nextWake(timeoutMs = 5000): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`no wake within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Polls (and waits for wakes) until `token` has seen one of `bits`; returns and forgets its bits. */
  async waitFor(token: number, bits: number, timeoutMs = 5000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.poll();
      const got = this.seen.get(token) ?? 0;
      if ((got & bits) !== 0) {
        this.seen.delete(token);
        return got;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`token ${token} saw no event in ${bits} within ${timeoutMs} ms`);
      await this.nextWake(left);
    }
  }

  /** Lets Node's loop run for `ms`, then polls everything that came meanwhile. */
  async settle(ms = 20): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    this.poll();
    this.seen.clear();
  }

  async listen(): Promise<{ lfd: number; port: number }> {
    const lfd = this.own(await this.s.listen(HOST, 0, 128, false));
    this.backend.register(lfd, LISTENER);
    return { lfd, port: this.s.localAddress(lfd).port };
  }

  async accept(lfd: number): Promise<number> {
    for (;;) {
      const fd = this.s.accept(lfd);
      if (fd !== -EAGAIN) {
        expect(fd).toBeGreaterThanOrEqual(0);
        return this.own(fd);
      }
      await this.waitFor(LISTENER, READABLE);
    }
  }

  /** A connected loopback pair: `client` registered as token 1, `server` as token 2. */
  async pair(): Promise<{ lfd: number; port: number; client: number; server: number }> {
    const { lfd, port } = await this.listen();
    const client = this.own(this.s.connect(HOST, port));
    this.backend.register(client, 1);
    const server = await this.accept(lfd);
    this.backend.register(server, 2);
    await this.waitFor(1, WRITABLE);
    expect(this.s.socketError(client)).toBe(0);
    return { lfd, port, client, server };
  }

  /** Reads until `n` bytes came (waiting on READABLE after -EAGAIN) or end of stream. */
  async readBytes(fd: number, token: number, n: number): Promise<Buffer> {
    const out = Buffer.alloc(n);
    let got = 0;
    while (got < n) {
      const r = this.s.read(fd, out, got, n - got);
      if (r === -EAGAIN) await this.waitFor(token, READABLE | HANGUP | ERROR);
      else if (r === 0) break;
      else if (r < 0) throw new Error(`read failed: ${r}`);
      else got += r;
    }
    return out.subarray(0, got);
  }

  /** Writes all of `data`, waiting for WRITABLE after -EAGAIN. */
  async writeAll(fd: number, token: number, data: Uint8Array): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const r = this.s.write(fd, data, done, data.length - done);
      if (r === -EAGAIN) await this.waitFor(token, WRITABLE | ERROR);
      else if (r < 0) throw new Error(`write failed: ${r}`);
      else done += r;
    }
  }

  /** The backend was closed with the descriptors: nothing left to close. */
  forget(): void {
    this.fds.clear();
  }

  dispose(): void {
    for (const fd of this.fds) this.s.close(fd);
    this.fds.clear();
    expect(this.s.openCount).toBe(0);
    this.backend.close();
  }
}

let h: Harness;
const extra: Array<{ close(): void }> = [];

afterEach(() => {
  h?.dispose();
  for (const thing of extra.splice(0)) thing.close();
});

function fresh(): Harness {
  h = new Harness();
  return h;
}

function pattern(n: number, seed = 7): Buffer {
  const buf = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) buf[i] = (i * 31 + seed) % 251;
  return buf;
}

describe('js backend sockets', () => {
  it('listens on port 0 and reports the bound port and both ends of a connection through localAddress/remoteAddress', async () => {
    const h = fresh();
    const { lfd, port, client, server } = await h.pair();
    expect(port).toBeGreaterThan(0);
    expect(h.s.localAddress(lfd)).toEqual({ address: HOST, family: 'IPv4', port });
    expect(h.s.remoteAddress(client)).toEqual({ address: HOST, family: 'IPv4', port });
    expect(h.s.localAddress(server).port).toBe(port);
    expect(h.s.remoteAddress(server)).toEqual(h.s.localAddress(client));
    expect(() => h.s.remoteAddress(lfd)).toThrow(expect.objectContaining({ code: 'ENOTCONN', syscall: 'getpeername' }));
  });

  it('moves bytes both ways byte-exact, and the caller may reuse its buffer as soon as write returns', async () => {
    const h = fresh();
    const { client, server } = await h.pair();
    const data = pattern(300_000);
    const scratch = Buffer.alloc(4096);
    // Write through one reused scratch buffer: the backend must have copied each piece.
    let sent = 0;
    const reading = h.readBytes(server, 2, data.length);
    while (sent < data.length) {
      const n = Math.min(scratch.length, data.length - sent);
      data.copy(scratch, 0, sent, sent + n);
      const r = h.s.write(client, scratch, 0, n);
      if (r === -EAGAIN) {
        await h.waitFor(1, WRITABLE);
        continue;
      }
      expect(r).toBe(n);
      scratch.fill(0xee);
      sent += n;
    }
    expect((await reading).equals(data)).toBe(true);
    const back = Buffer.from('and back again');
    expect(h.s.write(server, back, 4, 4)).toBe(4);
    expect((await h.readBytes(client, 1, 4)).toString()).toBe('back');
  });

  it('returns -EAGAIN from read when nothing is buffered, then reports READABLE when data arrives', async () => {
    const h = fresh();
    const { client, server } = await h.pair();
    const buf = Buffer.alloc(16);
    expect(h.s.read(server, buf, 0, 16)).toBe(-EAGAIN);
    await h.settle();
    expect(h.s.write(client, Buffer.from('ping'), 0, 4)).toBe(4);
    expect((await h.waitFor(2, READABLE)) & READABLE).toBe(READABLE);
    expect(h.s.read(server, buf, 0, 16)).toBe(4);
    expect(buf.toString('utf8', 0, 4)).toBe('ping');
    expect(h.s.read(server, buf, 0, 16)).toBe(-EAGAIN);
    // The next arrival after -EAGAIN is reported again (edge-triggered, once per arrival).
    expect(h.s.write(client, Buffer.from('pong'), 0, 4)).toBe(4);
    await h.waitFor(2, READABLE);
    expect(h.s.read(server, buf, 2, 2)).toBe(2);
    expect(h.s.read(server, buf, 4, 12)).toBe(2);
    expect(buf.toString('utf8', 2, 6)).toBe('pong');
  });

  it('reports the next arrival after a short read, as epoll does once the kernel buffer is drained', async () => {
    const h = fresh();
    const { client, server } = await h.pair();
    const buf = Buffer.alloc(64);
    expect(h.s.write(client, Buffer.from('0123456789'), 0, 10)).toBe(10);
    await h.waitFor(2, READABLE);
    // Reads in two pieces, the second short: src/net then waits without another read.
    expect(h.s.read(server, buf, 0, 4)).toBe(4);
    expect(h.s.read(server, buf, 4, 60)).toBe(6);
    await h.settle();
    expect(h.s.write(client, Buffer.from('abc'), 0, 3)).toBe(3);
    await h.waitFor(2, READABLE);
    expect(h.s.read(server, buf, 10, 54)).toBe(3);
    expect(buf.toString('utf8', 0, 13)).toBe('0123456789abc');
  });

  it('reads 0 after shutdown of its own read side and discards what arrives later', async () => {
    const h = fresh();
    const { client, server } = await h.pair();
    expect(h.s.shutdown(server, 0)).toBe(0);
    expect(h.s.read(server, Buffer.alloc(4), 0, 4)).toBe(0);
    expect(h.s.write(client, Buffer.from('ignored'), 0, 7)).toBe(7);
    await h.settle();
    expect(h.s.read(server, Buffer.alloc(8), 0, 8)).toBe(0);
    // The write side is untouched.
    expect(h.s.write(server, Buffer.from('still'), 0, 5)).toBe(5);
    expect((await h.readBytes(client, 1, 5)).toString()).toBe('still');
    expect(h.s.shutdown(server, 2)).toBe(0);
    expect(h.s.write(server, Buffer.from('x'), 0, 1)).toBe(-EPIPE);
  });

  it('reads 0 at end of stream after the peer shuts down writing, while the other direction keeps working', async () => {
    const h = fresh();
    const { client, server } = await h.pair();
    expect(h.s.write(client, Buffer.from('last words'), 0, 10)).toBe(10);
    expect(h.s.shutdown(client, 1)).toBe(0);
    expect(h.s.write(client, Buffer.from('x'), 0, 1)).toBe(-EPIPE);
    expect((await h.readBytes(server, 2, 100)).toString()).toBe('last words');
    expect(h.s.read(server, Buffer.alloc(8), 0, 8)).toBe(0);
    expect(h.s.read(server, Buffer.alloc(8), 0, 8)).toBe(0);
    // Half-close: the server still writes and the client still reads.
    await h.writeAll(server, 2, Buffer.from('reply after EOF'));
    expect((await h.readBytes(client, 1, 15)).toString()).toBe('reply after EOF');
    expect(h.s.shutdown(server, 1)).toBe(0);
    expect(await h.waitFor(1, HANGUP)).toBeTruthy();
    expect(h.s.read(client, Buffer.alloc(8), 0, 8)).toBe(0);
  });

  it('reports ERROR|HANGUP and socketError -ECONNREFUSED after connecting to a closed port', async () => {
    const h = fresh();
    const { lfd, port } = await h.listen();
    h.close(lfd);
    const fd = h.own(h.s.connect(HOST, port));
    h.backend.register(fd, 5);
    const bits = await h.waitFor(5, ERROR | HANGUP | WRITABLE);
    expect(bits & (ERROR | HANGUP)).toBe(ERROR | HANGUP);
    expect(bits & (READABLE | WRITABLE)).toBe(READABLE | WRITABLE);
    expect(h.s.socketError(fd)).toBe(-ECONNREFUSED);
    expect(h.s.read(fd, Buffer.alloc(4), 0, 4)).toBe(-ECONNREFUSED);
    expect(h.s.write(fd, Buffer.alloc(4), 0, 4)).toBe(-ECONNREFUSED);
  });

  it('returns -EAGAIN from write while connecting and reports WRITABLE once connected', async () => {
    const h = fresh();
    const { lfd, port } = await h.listen();
    const client = h.own(h.s.connect(HOST, port));
    h.backend.register(client, 1);
    expect(h.s.write(client, Buffer.from('early'), 0, 5)).toBe(-EAGAIN);
    expect(h.s.read(client, Buffer.alloc(5), 0, 5)).toBe(-EAGAIN);
    await h.waitFor(1, WRITABLE);
    expect(h.s.socketError(client)).toBe(0);
    expect(h.s.write(client, Buffer.from('early'), 0, 5)).toBe(5);
    const server = await h.accept(lfd);
    h.backend.register(server, 2);
    expect((await h.readBytes(server, 2, 5)).toString()).toBe('early');
  });

  it('rejects listen with Node\'s EADDRINUSE error when the port is taken, and reusePort with ERR_NOT_SUPPORTED', async () => {
    const h = fresh();
    const { port } = await h.listen();
    await expect(h.s.listen(HOST, port, 16, false)).rejects.toMatchObject({ code: 'EADDRINUSE', errno: -constants.errno.EADDRINUSE, syscall: 'listen' });
    await expect(h.s.listen(HOST, 0, 16, true)).rejects.toMatchObject({ code: 'ERR_NOT_SUPPORTED', message: expect.stringMatching(/js backend/) });
    expect(h.s.openCount).toBe(1);
  });

  it('accepts -EAGAIN when no connection is queued, reports READABLE on the listener when one arrives, and keeps data sent before accept', async () => {
    const h = fresh();
    const { lfd, port } = await h.listen();
    expect(h.s.accept(lfd)).toBe(-EAGAIN);
    const clients = [h.own(h.s.connect(HOST, port)), h.own(h.s.connect(HOST, port))];
    clients.forEach((fd, i) => h.backend.register(fd, 10 + i));
    await h.waitFor(LISTENER, READABLE);
    for (const [i, fd] of clients.entries()) {
      await h.waitFor(10 + i, WRITABLE);
      expect(h.s.write(fd, Buffer.from(`hello ${i}`), 0, 7)).toBe(7);
    }
    await h.settle(30);
    // Both connections were queued, and their data waited for the first read.
    const accepted = [h.own(h.s.accept(lfd)), h.own(h.s.accept(lfd))];
    expect(h.s.accept(lfd)).toBe(-EAGAIN);
    const got = accepted.map((fd) => {
      const buf = Buffer.alloc(16);
      const n = h.s.read(fd, buf, 0, 16);
      return buf.toString('utf8', 0, Math.max(n, 0));
    });
    expect(got.sort()).toEqual(['hello 0', 'hello 1']);
  });

  it('returns -EAGAIN from write once the peer stops reading, and reports WRITABLE after the peer drains', async () => {
    const h = fresh();
    const { client, server } = await h.pair();
    const chunk = pattern(65_536, 3);
    let written = 0;
    let result = 0;
    for (let i = 0; i < 4096; i++) {
      result = h.s.write(client, chunk, 0, chunk.length);
      if (result < 0) break;
      expect(result).toBe(chunk.length);
      written += result;
      // Let node:net hand what it can to the kernel, so that the buffers fill up for real.
      if (i % 16 === 15) await new Promise((resolve) => setImmediate(resolve));
    }
    expect(result).toBe(-EAGAIN);
    expect(written).toBeGreaterThan(0);
    await h.settle();
    expect(h.seen.get(1)).toBeUndefined();
    expect(h.s.write(client, chunk, 0, 1)).toBe(-EAGAIN);
    // The peer reads everything; WRITABLE comes for the writer once its queue drained.
    const buf = Buffer.alloc(65_536);
    let received = 0;
    while (received < written) {
      const n = h.s.read(server, buf, 0, buf.length);
      if (n === -EAGAIN) {
        await h.waitFor(2, READABLE, 10_000);
        continue;
      }
      expect(n).toBeGreaterThan(0);
      for (let k = 0; k < n; k++) {
        if (buf[k] !== chunk[(received + k) % chunk.length]) throw new Error(`byte ${received + k} differs`);
      }
      received += n;
    }
    expect(await h.waitFor(1, WRITABLE)).toBeTruthy();
    expect(received).toBe(written);
    expect(h.s.write(client, chunk, 0, 10)).toBe(10);
  });

  it('gathers the socket events of one turn of Node\'s loop into a single wake and a single poll', async () => {
    const h = fresh();
    const { lfd, port } = await h.listen();
    const N = 24;
    const clients: number[] = [];
    const servers: number[] = [];
    for (let i = 0; i < N; i++) {
      const client = h.own(h.s.connect(HOST, port));
      h.backend.register(client, 100 + i);
      clients.push(client);
    }
    for (let i = 0; i < N; i++) {
      const server = await h.accept(lfd);
      h.backend.register(server, 200 + i);
      servers.push(server);
    }
    for (let i = 0; i < N; i++) await h.waitFor(100 + i, WRITABLE);
    await h.settle();
    const wakesBefore = h.wakes;
    for (const client of clients) expect(h.s.write(client, Buffer.from('x'), 0, 1)).toBe(1);
    await h.nextWake();
    const batch = h.poll();
    expect(h.wakes).toBe(wakesBefore + 1);
    const readable = batch.filter(([token, bits]) => token >= 200 && (bits & READABLE) !== 0).map(([token]) => token);
    expect(readable.sort((a, b) => a - b)).toEqual(servers.map((_, i) => 200 + i));
    // One pair per token: repeated events of a descriptor are ORed together.
    expect(new Set(batch.map(([token]) => token)).size).toBe(batch.length);
  });

  it('keeps what does not fit in one poll for the next, and wakes again for it', async () => {
    const h = fresh();
    const { lfd, port } = await h.listen();
    const fds: number[] = [];
    for (let i = 0; i < 5; i++) fds.push(h.own(h.s.connect(HOST, port)));
    for (let i = 0; i < 5; i++) h.own(await h.accept(lfd));
    await h.settle();
    const wakesBefore = h.wakes;
    // register() reports current readiness (connected: WRITABLE) like epoll_ctl(ADD).
    fds.forEach((fd, i) => h.backend.register(fd, 50 + i));
    const small = new Int32Array(4);
    expect(h.s.collect(small)).toBe(2);
    expect([small[0], small[2]]).toEqual([50, 51]);
    expect(small[1]! & WRITABLE).toBe(WRITABLE);
    await h.nextWake();
    expect(h.wakes).toBe(wakesBefore + 1);
    expect(h.s.collect(small)).toBe(2);
    expect(h.s.collect(small)).toBe(1);
    expect(small[0]).toBe(54);
    expect(h.s.collect(small)).toBe(0);
  });

  it('drops events of unregistered descriptors and reports current readiness on registration', async () => {
    const h = fresh();
    const { client, server } = await h.pair();
    h.backend.unregister(server);
    expect(() => h.backend.unregister(server)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(h.s.write(client, Buffer.from('quiet'), 0, 5)).toBe(5);
    await h.settle(30);
    expect(h.poll().filter(([token]) => token === 2)).toEqual([]);
    h.backend.register(server, 7);
    expect(() => h.backend.register(server, 8)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    const bits = await h.waitFor(7, READABLE);
    expect(bits & (READABLE | WRITABLE)).toBe(READABLE | WRITABLE);
    expect((await h.readBytes(server, 7, 5)).toString()).toBe('quiet');
  });

  it('returns -ECONNRESET from read and write after the peer resets the connection', async () => {
    const h = fresh();
    const peer = net.createServer((socket) => socket.resetAndDestroy());
    extra.push(peer);
    await new Promise<void>((resolve) => peer.listen(0, HOST, resolve));
    const fd = h.own(h.s.connect(HOST, (peer.address() as net.AddressInfo).port));
    h.backend.register(fd, 9);
    const bits = await h.waitFor(9, ERROR);
    expect(bits & (ERROR | HANGUP | READABLE)).toBe(ERROR | HANGUP | READABLE);
    expect(h.s.read(fd, Buffer.alloc(4), 0, 4)).toBe(-ECONNRESET);
    expect(h.s.write(fd, Buffer.alloc(4), 0, 4)).toBe(-ECONNRESET);
    expect(h.s.socketError(fd)).toBe(-ECONNRESET);
  });

  it('still delivers bytes a write accepted when the descriptor is closed right after', async () => {
    const h = fresh();
    const { client, server } = await h.pair();
    const data = pattern(2_000_000, 11);
    let sent = 0;
    while (sent < data.length) {
      const r = h.s.write(client, data, sent, data.length - sent);
      if (r === -EAGAIN) break;
      sent += r;
    }
    h.close(client);
    // Reads up to end of stream: exactly what was accepted, then EOF.
    const got = await h.readBytes(server, 2, data.length + 1);
    expect(got.length).toBe(sent);
    expect(got.equals(data.subarray(0, sent))).toBe(true);
    expect(h.s.read(server, Buffer.alloc(1), 0, 1)).toBe(0);
  });

  it('closes the connections nobody accepted when the listener closes', async () => {
    const h = fresh();
    const { lfd, port } = await h.listen();
    const client = h.own(h.s.connect(HOST, port));
    h.backend.register(client, 1);
    await h.waitFor(LISTENER, READABLE);
    h.backend.unregister(lfd);
    h.close(lfd);
    await h.waitFor(1, HANGUP);
    expect(h.s.read(client, Buffer.alloc(4), 0, 4)).toBeLessThanOrEqual(0);
  });

  it('throws EBADF for a closed or unknown descriptor, and reuses closed descriptors', async () => {
    const h = fresh();
    const { client } = await h.pair();
    h.close(client);
    const buf = Buffer.alloc(4);
    const ebadf = expect.objectContaining({ code: 'EBADF', errno: -EBADF });
    expect(() => h.s.read(client, buf, 0, 4)).toThrow(ebadf);
    expect(() => h.s.write(client, buf, 0, 4)).toThrow(ebadf);
    expect(() => h.s.accept(client)).toThrow(ebadf);
    expect(() => h.s.shutdown(client, 1)).toThrow(ebadf);
    expect(() => h.s.close(client)).toThrow(ebadf);
    expect(() => h.s.socketError(client)).toThrow(ebadf);
    expect(() => h.s.localAddress(client)).toThrow(ebadf);
    expect(() => h.backend.register(client, 3)).toThrow(ebadf);
    expect(() => h.s.read(123_456, buf, 0, 4)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'read' }));
    const again = h.own(h.s.connect(HOST, 9));
    expect(again).toBe(client);
  });

  it('throws TypeError for wrong argument types and RangeError for out-of-range numbers', async () => {
    const h = fresh();
    const { client, lfd } = await h.pair();
    const s = h.s as unknown as Record<string, (...args: unknown[]) => unknown>;
    const buf = Buffer.alloc(8);
    const typeErr = expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    const rangeErr = expect.objectContaining({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    for (const call of ['read', 'write'] as const) {
      expect(() => s[call]!.call(h.s, client, 'text', 0, 1)).toThrow(typeErr);
      expect(() => s[call]!.call(h.s, client, new Uint8ClampedArray(8), 0, 1)).toThrow(typeErr);
      expect(() => s[call]!.call(h.s, client, buf, '0', 1)).toThrow(typeErr);
      expect(() => s[call]!.call(h.s, client, buf, 0, undefined)).toThrow(typeErr);
      expect(() => s[call]!.call(h.s, String(client), buf, 0, 1)).toThrow(typeErr);
      expect(() => s[call]!.call(h.s, client, buf, -1, 1)).toThrow(rangeErr);
      expect(() => s[call]!.call(h.s, client, buf, 9, 0)).toThrow(rangeErr);
      expect(() => s[call]!.call(h.s, client, buf, 4, 5)).toThrow(rangeErr);
      expect(() => s[call]!.call(h.s, client, buf, 0.5, 1)).toThrow(rangeErr);
      expect(() => s[call]!.call(h.s, client, buf, 0, NaN)).toThrow(rangeErr);
      expect(() => s[call]!.call(h.s, -1, buf, 0, 1)).toThrow(rangeErr);
      expect(() => s[call]!.call(h.s, 1.5, buf, 0, 1)).toThrow(rangeErr);
      // Argument errors come before the descriptor lookup, as in the addon.
      expect(() => s[call]!.call(h.s, 99_999, buf, 0, 9)).toThrow(rangeErr);
    }
    expect(() => h.s.shutdown(client, 3)).toThrow(rangeErr);
    expect(() => h.s.accept('3' as unknown as number)).toThrow(typeErr);
    expect(() => h.backend.register(lfd, -1)).toThrow(rangeErr);
    expect(() => h.s.connect(HOST, 70_000)).toThrow(rangeErr);
    expect(() => h.s.connect('localhost', 80)).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_IP_ADDRESS' }));
    expect(() => h.s.listen(HOST, 0, 16, 1 as unknown as boolean)).toThrow(typeErr);
    expect(() => h.s.listen(HOST, 0, -1, false)).toThrow(rangeErr);
    // Zero-length calls are valid and do nothing.
    expect(h.s.write(client, buf, 8, 0)).toBe(0);
    expect(h.s.read(client, buf, 8, 0)).toBe(0);
  });

  it('closing the backend destroys every open socket and server and stops waking', async () => {
    const h = fresh();
    const { client, server, lfd } = await h.pair();
    const wakes = h.wakes;
    expect(h.s.write(client, Buffer.from('late'), 0, 4)).toBe(4);
    h.backend.close();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(h.wakes).toBe(wakes);
    expect(h.s.openCount).toBe(0);
    for (const fd of [client, server, lfd]) expect(() => h.s.close(fd)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(() => h.s.connect(HOST, 9)).toThrow(expect.objectContaining({ code: 'ERR_BACKEND_CLOSED' }));
    h.forget();
  });
});
