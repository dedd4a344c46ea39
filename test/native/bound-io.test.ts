import { closeSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { NativeBinding } from '../../src/native.js';
import { addons, socketPair } from './addons.js';

const EAGAIN = -11;
const READ = 0;
const WRITE = 1;

/** ioArgs = fd, offset, length; the bound call; its result. */
function bound(n: NativeBinding, side: 0 | 1, fd: number, offset: number, length: number): number {
  const args = n.ioArgs;
  args[0] = fd;
  args[1] = offset;
  args[2] = length;
  args[3] = 12345;
  if (side === READ) n.readBound();
  else n.writeBound();
  return args[3]!;
}

async function readSome(n: NativeBinding, fd: number, offset: number, length: number): Promise<number> {
  let got = bound(n, READ, fd, offset, length);
  for (let i = 0; got === EAGAIN && i < 200; i++) {
    await new Promise((resolve) => setTimeout(resolve, 2));
    got = bound(n, READ, fd, offset, length);
  }
  return got;
}

function detach(buf: Uint8Array): void {
  structuredClone(buf.buffer, { transfer: [buf.buffer as ArrayBuffer] });
}

describe.each(addons)('bound reads and writes (%s)', (_name, n: NativeBinding) => {
  it('moves bytes through views bound at an offset in their buffer, touching nothing outside them', async () => {
    const s = await socketPair(n);
    try {
      const outer = new Uint8Array(64).fill(0xee);
      const source = outer.subarray(8, 24);
      source.set(Buffer.from('..hello, bound..'));
      n.bindBuffer(s.client, WRITE, source);
      expect(bound(n, WRITE, s.client, 2, 12)).toBe(12);

      const backing = new Uint8Array(64).fill(0xaa);
      const target = backing.subarray(16, 48);
      n.bindBuffer(s.server, READ, target);
      expect(await readSome(n, s.server, 4, 28)).toBe(12);
      expect(Buffer.from(target.subarray(4, 16)).toString()).toBe('hello, bound');
      // Outside [offset, offset + result) of the view, and outside the view, nothing changed.
      expect([...backing.subarray(0, 20)].every((b) => b === 0xaa)).toBe(true);
      expect([...backing.subarray(32)].every((b) => b === 0xaa)).toBe(true);
    } finally {
      s.close();
    }
  });

  it('reads the bound buffer as it is at each call, and a new binding replaces the old', async () => {
    const s = await socketPair(n);
    try {
      const buf = new Uint8Array(4);
      n.bindBuffer(s.client, WRITE, buf);
      buf.set([1, 2, 3, 4]);
      expect(bound(n, WRITE, s.client, 0, 4)).toBe(4);
      buf.set([5, 6, 7, 8]);
      expect(bound(n, WRITE, s.client, 0, 4)).toBe(4);
      const other = Uint8Array.of(9);
      n.bindBuffer(s.client, WRITE, other);
      expect(bound(n, WRITE, s.client, 0, 1)).toBe(1);

      const first = new Uint8Array(9);
      n.bindBuffer(s.server, READ, first);
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(await readSome(n, s.server, 0, 9)).toBe(9);
      expect([...first]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    } finally {
      s.close();
    }
  });

  it('returns -EAGAIN in ioArgs when nothing is ready, and 0 at end of stream', async () => {
    const s = await socketPair(n);
    try {
      n.bindBuffer(s.server, READ, new Uint8Array(8));
      expect(bound(n, READ, s.server, 0, 8)).toBe(EAGAIN);
      n.shutdown(s.client, 1);
      expect(await readSome(n, s.server, 0, 8)).toBe(0);
    } finally {
      s.close();
    }
  });

  it('refuses a range outside the bound view, an fd with nothing bound, and a side bound to nothing', async () => {
    const s = await socketPair(n);
    try {
      n.bindBuffer(s.server, READ, new Uint8Array(32).subarray(8, 16));
      expect(() => bound(n, READ, s.server, 0, 9)).toThrow(RangeError);
      expect(() => bound(n, READ, s.server, 8, 1)).toThrow(RangeError);
      expect(() => bound(n, READ, s.server, -1, 2)).toThrow(RangeError);
      expect(() => bound(n, READ, s.server, 2, -1)).toThrow(RangeError);
      expect(() => bound(n, WRITE, s.server, 0, 1)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
      expect(() => bound(n, READ, s.client, 0, 1)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
      expect(() => bound(n, READ, -5, 0, 1)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
      expect(() => bound(n, READ, 2 ** 30, 0, 1)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
      // A failed check writes no result.
      expect(n.ioArgs[3]).toBe(12345);
    } finally {
      s.close();
    }
  });

  it('checks what it binds: a closed fd is EBADF, a shared buffer or a non-Uint8Array a TypeError', async () => {
    const s = await socketPair(n);
    try {
      expect(() => n.bindBuffer(2 ** 30, READ, new Uint8Array(1))).toThrow(RangeError);
      const listener = s.listener;
      const closed = n.listen('127.0.0.1', 0, 1, false);
      n.close(closed);
      expect(() => n.bindBuffer(closed, READ, new Uint8Array(1))).toThrow(expect.objectContaining({ code: 'EBADF' }));
      expect(() => n.bindBuffer(listener, 2 as 0, new Uint8Array(1))).toThrow(RangeError);
      expect(() => n.bindBuffer(listener, READ, new Uint8Array(new SharedArrayBuffer(8)))).toThrow(TypeError);
      expect(() => n.bindBuffer(listener, READ, new Uint16Array(4) as unknown as Uint8Array)).toThrow(TypeError);
      expect(() => n.bindBuffer(listener, READ, Buffer.from('x').buffer as unknown as Uint8Array)).toThrow(TypeError);
    } finally {
      s.close();
    }
  });

  it('lets go of a binding when the fd is closed: the number, reused, has nothing bound', async () => {
    const first = await socketPair(n);
    const fd = first.server;
    n.bindBuffer(fd, READ, new Uint8Array(8));
    n.bindBuffer(fd, WRITE, new Uint8Array(8));
    first.close();
    const second = await socketPair(n);
    try {
      // Whichever of the new sockets got the number, it starts with nothing bound.
      expect([second.listener, second.client, second.server]).toContain(fd);
      expect(() => bound(n, READ, fd, 0, 1)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
      expect(() => bound(n, WRITE, fd, 0, 1)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
    } finally {
      second.close();
    }
  });

  it('keeps a buffer bound by several fds for the others when one of them closes', async () => {
    const a = await socketPair(n);
    const b = await socketPair(n);
    try {
      const shared = new Uint8Array(8);
      shared.set(Buffer.from('shared!!'));
      n.bindBuffer(a.client, WRITE, shared);
      n.bindBuffer(b.client, WRITE, shared);
      n.bindBuffer(a.server, READ, shared.subarray(0, 4));
      n.close(a.server);
      n.close(a.client);
      expect(bound(n, WRITE, b.client, 0, 8)).toBe(8);
      const into = new Uint8Array(8);
      n.bindBuffer(b.server, READ, into);
      expect(await readSome(n, b.server, 0, 8)).toBe(8);
      expect(Buffer.from(into).toString()).toBe('shared!!');
    } finally {
      n.close(a.listener);
      b.close();
    }
  });

  it('fails cleanly, without touching freed memory, when the bound buffer is detached', async () => {
    const s = await socketPair(n);
    try {
      const buf = new Uint8Array(16);
      n.bindBuffer(s.client, WRITE, buf);
      n.bindBuffer(s.server, READ, buf);
      detach(buf);
      expect(() => bound(n, WRITE, s.client, 0, 16)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
      expect(() => bound(n, READ, s.server, 0, 16)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
    } finally {
      s.close();
    }
  });

  it('throws EBADF, as the plain calls do, when the fd was closed behind the binding', async () => {
    const s = await socketPair(n);
    n.bindBuffer(s.server, READ, new Uint8Array(8));
    closeSync(s.server);
    try {
      expect(() => bound(n, READ, s.server, 0, 8)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'read' }));
    } finally {
      n.close(s.client);
      n.close(s.listener);
    }
  });
});
