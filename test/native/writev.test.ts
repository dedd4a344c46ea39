import { afterEach, describe, expect, it } from 'vitest';
import { native } from './addons.js';

const EAGAIN = -11;
const open: number[] = [];
afterEach(() => {
  for (const fd of open.splice(0)) native.close(fd);
});

/** A connected pair of nonblocking sockets on loopback. */
async function pair(): Promise<[number, number]> {
  const listener = native.listen('127.0.0.1', 0, 8, false);
  open.push(listener);
  const client = native.connect('127.0.0.1', native.localAddress(listener).port);
  open.push(client);
  let server = EAGAIN;
  for (let i = 0; i < 100 && server === EAGAIN; i++) {
    server = native.accept(listener);
    if (server === EAGAIN) await new Promise((r) => setTimeout(r, 5));
  }
  expect(server).toBeGreaterThanOrEqual(0);
  open.push(server);
  return [client, server];
}

async function readExactly(fd: number, length: number): Promise<Buffer> {
  const out = Buffer.alloc(length);
  let got = 0;
  for (let i = 0; i < 200 && got < length; i++) {
    const n = native.read(fd, out, got, length - got);
    if (n > 0) got += n;
    else await new Promise((r) => setTimeout(r, 5));
  }
  return out.subarray(0, got);
}

describe('writev', () => {
  it('sends the first buffer from its offset and the others whole, in order, in one call', async () => {
    const [client, server] = await pair();
    const parts = [Buffer.from('xxhello '), Buffer.from('gathered '), Buffer.from('world')];
    expect(native.writev(client, parts, 2)).toBe(20);
    expect((await readExactly(server, 20)).toString()).toBe('hello gathered world');
  });

  it('returns a short count or -EAGAIN when the kernel buffer fills, and never loses order', async () => {
    const [client, server] = await pair();
    const chunk = Buffer.alloc(1 << 20, 1);
    let sent = 0;
    let last = 0;
    for (let i = 0; i < 64; i++) {
      last = native.writev(client, [chunk, chunk], 0);
      if (last < 0) break;
      sent += last;
      if (last < 2 * chunk.length) break;
    }
    expect(last === EAGAIN || last < 2 * chunk.length).toBe(true);
    expect(sent).toBeGreaterThan(0);
    const got = await readExactly(server, Math.min(sent, 65536));
    expect(got.every((b) => b === 1)).toBe(true);
  });

  it('rejects bad arguments with TypeError and RangeError', async () => {
    const [client] = await pair();
    const buf = Buffer.from('abc');
    expect(() => native.writev(client, buf as never, 0)).toThrow(TypeError);
    expect(() => native.writev(client, [], 0)).toThrow(RangeError);
    expect(() => native.writev(client, Array(65).fill(buf), 0)).toThrow(RangeError);
    expect(() => native.writev(client, [buf, 'x' as never], 0)).toThrow(TypeError);
    expect(() => native.writev(client, [buf], 4)).toThrow(RangeError);
    expect(() => native.writev(client, [buf], -1)).toThrow(RangeError);
    expect(() => native.writev(client, [buf], 1.5)).toThrow(RangeError);
    expect(() => native.writev(-1, [buf], 0)).toThrow(RangeError);
  });
});
