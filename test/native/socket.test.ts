import { describe, expect, it } from 'vitest';
import { native as n, socketPair } from './addons.js';

const EAGAIN = -11;
const EPIPE = -32;
const ECONNRESET = -104;

describe('native sockets', () => {
  it('moves bytes both ways over a loopback connection', async () => {
    const s = await socketPair();
    try {
      const data = Buffer.from('hello, coloop');
      expect(n.write(s.client, data, 0, data.length)).toBe(data.length);
      const buf = Buffer.alloc(64);
      let got = n.read(s.server, buf, 0, buf.length);
      for (let i = 0; got === EAGAIN && i < 100; i++) {
        await new Promise((resolve) => setTimeout(resolve, 2));
        got = n.read(s.server, buf, 0, buf.length);
      }
      expect(buf.toString('utf8', 0, got)).toBe('hello, coloop');
      expect(n.write(s.server, buf, 7, 6)).toBe(6);
      await new Promise((resolve) => setTimeout(resolve, 5));
      const back = Buffer.alloc(6);
      expect(n.read(s.client, back, 0, 6)).toBe(6);
      expect(back.toString()).toBe('coloop');
    } finally {
      s.close();
    }
  });

  it('returns -EAGAIN from read and accept when nothing is ready', async () => {
    const s = await socketPair();
    try {
      expect(n.read(s.server, Buffer.alloc(8), 0, 8)).toBe(EAGAIN);
      expect(n.accept(s.listener)).toBe(EAGAIN);
    } finally {
      s.close();
    }
  });

  it('reads 0 at end of stream after the peer shuts down writing', async () => {
    const s = await socketPair();
    try {
      expect(n.shutdown(s.client, 1)).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 5));
      expect(n.read(s.server, Buffer.alloc(8), 0, 8)).toBe(0);
    } finally {
      s.close();
    }
  });

  it('returns -EPIPE or -ECONNRESET, never SIGPIPE, when writing to a closed peer', async () => {
    const s = await socketPair();
    n.close(s.server);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const data = Buffer.alloc(1024);
    let result = 0;
    for (let i = 0; i < 10 && result >= 0; i++) {
      result = n.write(s.client, data, 0, data.length);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    expect([EPIPE, ECONNRESET]).toContain(result);
    n.close(s.client);
    n.close(s.listener);
  });

  it('reports local and remote addresses', async () => {
    const s = await socketPair();
    try {
      const local = n.localAddress(s.listener);
      expect(local).toEqual({ address: '127.0.0.1', family: 'IPv4', port: expect.any(Number) });
      expect(n.remoteAddress(s.client)).toEqual(local);
      expect(n.remoteAddress(s.server).port).toBe(n.localAddress(s.client).port);
      expect(() => n.remoteAddress(s.listener)).toThrow(expect.objectContaining({ code: 'ENOTCONN', syscall: 'getpeername' }));
    } finally {
      s.close();
    }
  });

  it('listens and connects over IPv6 when the host has ::1', () => {
    let listener: number;
    try {
      listener = n.listen('::1', 0, 4, true);
    } catch (e) {
      expect((e as { code: string }).code).toMatch(/EADDRNOTAVAIL|EAFNOSUPPORT/);
      return;
    }
    const local = n.localAddress(listener);
    expect(local.family).toBe('IPv6');
    expect(local.address).toBe('::1');
    const client = n.connect('::1', local.port);
    expect(n.close(client)).toBe(0);
    expect(n.close(listener)).toBe(0);
  });

  it('throws EADDRINUSE with address and port when the port is taken', () => {
    const first = n.listen('127.0.0.1', 0, 4, false);
    const { port } = n.localAddress(first);
    try {
      expect(() => n.listen('127.0.0.1', port, 4, false)).toThrow(
        expect.objectContaining({
          code: 'EADDRINUSE',
          errno: -98,
          syscall: 'bind',
          address: '127.0.0.1',
          port,
          message: `bind EADDRINUSE 127.0.0.1:${port}`,
        }),
      );
    } finally {
      n.close(first);
    }
  });

  it('rejects hosts that are not numeric addresses with a TypeError', () => {
    for (const host of ['localhost', '', '127.0.0.1\0junk', '1.2.3', '::g']) {
      expect(() => n.listen(host, 0, 1, false)).toThrow(TypeError);
      expect(() => n.connect(host, 80)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_IP_ADDRESS' }));
    }
  });

  it('throws EBADF on hot-path calls with a closed fd', () => {
    const fd = n.listen('127.0.0.1', 0, 1, false);
    n.close(fd);
    const buf = Buffer.alloc(4);
    const calls: Array<[string, () => unknown]> = [
      ['read', () => n.read(fd, buf, 0, 4)],
      ['write', () => n.write(fd, buf, 0, 4)],
      ['accept', () => n.accept(fd)],
      ['shutdown', () => n.shutdown(fd, 2)],
      ['close', () => n.close(fd)],
      ['getsockopt', () => n.socketError(fd)],
    ];
    for (const [syscall, call] of calls) {
      expect(call).toThrow(expect.objectContaining({ code: 'EBADF', errno: -9, syscall, message: `${syscall} EBADF` }));
    }
  });

  it('validates fds, buffers, offsets and lengths', () => {
    const buf = Buffer.alloc(8);
    expect(() => n.read(-1, buf, 0, 1)).toThrow(RangeError);
    expect(() => n.read(2 ** 31, buf, 0, 1)).toThrow(RangeError);
    expect(() => n.read(1.5, buf, 0, 1)).toThrow(RangeError);
    expect(() => n.read(NaN, buf, 0, 1)).toThrow(RangeError);
    expect(() => n.read('3' as unknown as number, buf, 0, 1)).toThrow(TypeError);
    expect(() => n.read(2 ** 30, [] as unknown as Uint8Array, 0, 1)).toThrow(TypeError);
    expect(() => n.read(2 ** 30, new Uint16Array(4) as unknown as Uint8Array, 0, 1)).toThrow(TypeError);
    expect(() => n.read(2 ** 30, buf, 9, 0)).toThrow(RangeError);
    expect(() => n.read(2 ** 30, buf, 4, 5)).toThrow(RangeError);
    expect(() => n.write(2 ** 30, buf, -1, 1)).toThrow(RangeError);
    expect(() => n.shutdown(2 ** 30, 3)).toThrow(RangeError);
    expect(() => n.listen('127.0.0.1', 65536, 1, false)).toThrow(RangeError);
    expect(() => n.listen('127.0.0.1', 0, 1, 'yes' as unknown as boolean)).toThrow(TypeError);
  });

  /**
   * readBuffer/writeBuffer as arguments, and through the argument block (readBlock/writeBlock: the
   * numbers in ioBlock, the result in its slot 3), which must behave exactly alike.
   */
  const blockForm = (name: 'readBlock' | 'writeBlock') => (fd: number, buffer: ArrayBuffer, offset: number, length: number): number => {
    const block = n.ioBlock!;
    block[0] = fd;
    block[1] = offset;
    block[2] = length;
    block[3] = 12345;
    expect(n[name]!(buffer)).toBeUndefined();
    return block[3]!;
  };
  const forms = [
    ['arguments', n.readBuffer!, n.writeBuffer!],
    ['the argument block', blockForm('readBlock'), blockForm('writeBlock')],
  ] as const;

  it.each(forms)('readBuffer and writeBuffer (%s) move bytes named by an ArrayBuffer and an absolute range of it', async (_, readBuffer, writeBuffer) => {
    const s = await socketPair();
    try {
      const memory = new ArrayBuffer(64);
      new Uint8Array(memory).set(Buffer.from('..hello, coloop..'));
      expect(writeBuffer(s.client, memory, 2, 13)).toBe(13);
      const into = new ArrayBuffer(32);
      let got = readBuffer(s.server, into, 5, 27);
      for (let i = 0; got === EAGAIN && i < 100; i++) {
        await new Promise((resolve) => setTimeout(resolve, 2));
        got = readBuffer(s.server, into, 5, 27);
      }
      expect(got).toBe(13);
      expect(Buffer.from(into, 5, 13).toString()).toBe('hello, coloop');
      // Nothing outside the range was touched.
      expect(new Uint8Array(into, 0, 5).every((b) => b === 0)).toBe(true);
      expect(new Uint8Array(into, 18).every((b) => b === 0)).toBe(true);
      expect(readBuffer(s.server, into, 0, 32)).toBe(EAGAIN);
      // End of stream is 0.
      expect(n.shutdown(s.client, 1)).toBe(0);
      got = readBuffer(s.server, into, 0, 32);
      for (let i = 0; got === EAGAIN && i < 100; i++) {
        await new Promise((resolve) => setTimeout(resolve, 2));
        got = readBuffer(s.server, into, 0, 32);
      }
      expect(got).toBe(0);
    } finally {
      s.close();
    }
  });

  it.each(forms.flatMap(([form, read, write]) => [[form, 'read', read] as const, [form, 'write', write] as const]))(
    '%s: the %s takes an ArrayBuffer (the block a Uint8Array too), and only a range inside it as it is now',
    (form, syscall, f) => {
      const memory = new ArrayBuffer(8);
      if (form === 'arguments') expect(() => f(2 ** 30, new Uint8Array(8) as unknown as ArrayBuffer, 0, 1)).toThrow(TypeError);
      expect(() => f(2 ** 30, new Uint16Array(8) as unknown as ArrayBuffer, 0, 1)).toThrow(TypeError);
      expect(() => f(2 ** 30, new DataView(memory) as unknown as ArrayBuffer, 0, 1)).toThrow(TypeError);
      expect(() => f(2 ** 30, new SharedArrayBuffer(8) as unknown as ArrayBuffer, 0, 1)).toThrow(TypeError);
      expect(() => f(2 ** 30, memory, 9, 0)).toThrow(RangeError);
      expect(() => f(2 ** 30, memory, 4, 5)).toThrow(RangeError);
      expect(() => f(2 ** 30, memory, 1.5, 1)).toThrow(RangeError);
      expect(() => f(2 ** 30, memory, 0, NaN)).toThrow(RangeError);
      expect(() => f(-1, memory, 0, 1)).toThrow(RangeError);
      expect(() => f(2 ** 31, memory, 0, 1)).toThrow(RangeError);
      expect(() => f(0.5, memory, 0, 1)).toThrow(RangeError);
      // Detached: no bytes at all.
      const gone = new ArrayBuffer(8);
      structuredClone(gone, { transfer: [gone] });
      expect(() => f(2 ** 30, gone, 0, 1)).toThrow(RangeError);
      // Resizable, shrunk since: its length now bounds the range.
      const resizable = new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer & { resize(n: number): void })(16, { maxByteLength: 16 });
      resizable.resize(4);
      expect(() => f(2 ** 30, resizable, 0, 8)).toThrow(RangeError);
      const fd = n.listen('127.0.0.1', 0, 1, false);
      n.close(fd);
      expect(() => f(fd, memory, 0, 4)).toThrow(expect.objectContaining({ code: 'EBADF', syscall }));
    },
  );

  it('the argument block takes a Uint8Array too, with the range relative to the view', async () => {
    const s = await socketPair();
    try {
      const backing = new Uint8Array(32).fill(0x2d);
      const view = backing.subarray(8, 24);
      view.set(Buffer.from('hello'), 3);
      expect(blockForm('writeBlock')(s.client, view as unknown as ArrayBuffer, 3, 5)).toBe(5);
      // A view of a SharedArrayBuffer, as read() takes it.
      const shared = new Uint8Array(new SharedArrayBuffer(16), 4, 8);
      let got = blockForm('readBlock')(s.server, shared as unknown as ArrayBuffer, 2, 6);
      for (let i = 0; got === EAGAIN && i < 100; i++) {
        await new Promise((resolve) => setTimeout(resolve, 2));
        got = blockForm('readBlock')(s.server, shared as unknown as ArrayBuffer, 2, 6);
      }
      expect(got).toBe(5);
      expect(Buffer.from(shared.subarray(2, 7)).toString()).toBe('hello');
      expect(new Uint8Array(shared.buffer, 0, 6).every((b) => b === 0)).toBe(true);
      // The view's bounds, not its buffer's, bound the range; a detached view has none.
      expect(() => blockForm('writeBlock')(s.client, view as unknown as ArrayBuffer, 10, 7)).toThrow(RangeError);
      const gone = new Uint8Array(8);
      structuredClone(gone.buffer, { transfer: [gone.buffer] });
      expect(() => blockForm('readBlock')(s.server, gone as unknown as ArrayBuffer, 0, 1)).toThrow(RangeError);
    } finally {
      s.close();
    }
  });

  it('the argument block outlives whatever JS does to its ArrayBuffer', async () => {
    const block = n.ioBlock!;
    // The block's memory is the addon's: a transfer cannot take it away (V8 copies it).
    structuredClone(block.buffer, { transfer: [block.buffer as ArrayBuffer] });
    expect(block.length).toBe(4);
    const s = await socketPair();
    try {
      expect(blockForm('writeBlock')(s.client, new ArrayBuffer(4), 0, 4)).toBe(4);
      expect(() => n.readBlock!(undefined as unknown as ArrayBuffer)).toThrow(TypeError);
      expect(() => Reflect.apply(n.writeBlock!, null, [])).toThrow(TypeError);
    } finally {
      s.close();
    }
  });
});
