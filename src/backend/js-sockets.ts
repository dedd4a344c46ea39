/**
 * The pure-JS backend's sockets: the native addon's nonblocking socket calls (src/native.ts),
 * emulated over node:net on descriptors that exist only in JS ("fake fds", small integers from a
 * table owned here). src/net/ is written once against `SocketApi`, so every call here behaves like
 * its native counterpart on an epoll edge-triggered, nonblocking Linux socket:
 *
 * - hot-path calls return a count, a descriptor or a negative errno (-EAGAIN: wait for the token's
 *   next READABLE/WRITABLE); wrong argument types throw TypeError, out-of-range numbers RangeError,
 *   an unknown or closed descriptor a Node-style EBADF Error;
 * - node:net callbacks do not reach the loop one by one: they OR event bits into the descriptor's
 *   entry and queue it once, and one coalesced `setImmediate` wakes the loop, so everything that
 *   happened in one turn of libuv's poll phase is reported by one `collect` (one coloop tick);
 * - listeners are module-level functions that find their entry through a symbol on the emitter:
 *   no closure per socket and none per event.
 */
import * as net from 'node:net';
import { constants } from 'node:os';
import { errnoError } from '../errors.js';
import { ERROR, HANGUP, READABLE, WRITABLE } from '../native.js';
import type { SocketAddress, SocketApi } from './backend.js';

const ERRNO = constants.errno as Readonly<Record<string, number>>;
const EAGAIN = ERRNO.EAGAIN!;
const EBADF = ERRNO.EBADF!;
const EPIPE = ERRNO.EPIPE!;
const EINVAL = ERRNO.EINVAL!;
const ENOTCONN = ERRNO.ENOTCONN!;
const EEXIST = ERRNO.EEXIST!;
const ENOENT = ERRNO.ENOENT!;
const EIO = ERRNO.EIO!;

/** Fake descriptors start above stdio, like the first socket of a process would. */
const FIRST_FD = 3;
/**
 * The emulated kernel send buffer: write() takes at most this much beyond what node:net still
 * queues. It must be at least node:net's writableHighWaterMark (16 KiB) so that a refused write
 * always has a 'drain' coming.
 */
const SEND_BUFFER_BYTES = 256 * 1024;
const INT32_MAX = 0x7fffffff;

const kConn = Symbol('coloop.conn');
const kListener = Symbol('coloop.listener');

type TaggedSocket = net.Socket & { [kConn]: Conn };
type TaggedServer = net.Server & { [kListener]: Listener };

/** What the table holds for one descriptor; queued for `collect` while `pendingBits` is non-zero. */
abstract class Entry {
  fd = -1;
  /** The registered token, or -1: events are dropped while unregistered (state is still kept). */
  token = -1;
  /** Event bits gathered since the last `collect`; non-zero exactly while queued in `pending`. */
  pendingBits = 0;
  closed = false;
  abstract readonly isListener: boolean;

  constructor(readonly owner: JsSockets) {}

  /** The bits an epoll_ctl(ADD) would report at once for the current state. */
  abstract readiness(): number;
}

/** A connected (or connecting) TCP socket. */
class Conn extends Entry {
  readonly isListener = false;
  /** The rest of a chunk taken from the socket that did not fit the reader's buffer. */
  chunk: Buffer | null = null;
  chunkOffset = 0;
  /** 'end' seen: the peer shut down writing. */
  eof = false;
  /** The negative errno the socket failed with (SO_ERROR), or 0. Sticky. */
  error = 0;
  /** 'close' seen: the socket is gone. */
  gone = false;
  /** socket.write returned false: writes are refused (-EAGAIN) until 'drain'. */
  writeBlocked = false;
  /** shutdown(1 or 2) called: writes fail with -EPIPE. */
  writeShut = false;
  /** shutdown(0 or 2) called: reads return 0 and incoming data is discarded. */
  readShut = false;
  /** Connecting to an IPv6 address (for the unbound address getsockname reports meanwhile). */
  ipv6 = false;

  constructor(
    owner: JsSockets,
    readonly socket: net.Socket,
    public connecting: boolean,
  ) {
    super(owner);
    (socket as TaggedSocket)[kConn] = this;
    if (connecting) socket.on('connect', onConnect);
    // A 'readable' listener puts the stream in paused mode from the start: what arrives before
    // the first read is buffered by the stream (and reading from the kernel stops at its
    // high-water mark, which is the emulation's receive window).
    socket.on('readable', onReadable);
    socket.on('end', onEnd);
    socket.on('drain', onDrain);
    socket.on('error', onSocketError);
    socket.on('close', onSocketClose);
  }

  readiness(): number {
    if (this.connecting) return 0;
    let bits = 0;
    if (this.error !== 0) bits |= READABLE | WRITABLE | ERROR | HANGUP;
    if (this.eof || this.gone) bits |= READABLE | HANGUP;
    if (this.chunk !== null || this.readShut || this.socket.readableLength > 0) bits |= READABLE;
    if (!this.writeBlocked) bits |= WRITABLE;
    return bits;
  }

  /** Frees the socket. Bytes a write already accepted are still sent (as close(2) would). */
  release(graceful: boolean): void {
    this.chunk = null;
    const socket = this.socket;
    if (graceful && this.error === 0 && !this.gone && socket.writableLength > 0) {
      // end() after the queued writes, then destroy on 'finish'.
      socket.destroySoon();
    } else {
      socket.destroy();
    }
  }
}

/** A listening socket and its accept queue of connections nobody has accepted yet. */
class Listener extends Entry {
  readonly isListener = true;
  readonly queue: (Conn | null)[] = [];
  head = 0;
  /** An accept failure Node reported (EMFILE, ...): returned once by the next accept. */
  error = 0;

  constructor(
    owner: JsSockets,
    readonly server: net.Server,
  ) {
    super(owner);
    (server as TaggedServer)[kListener] = this;
    server.on('connection', onConnection);
  }

  readiness(): number {
    return this.head < this.queue.length || this.error !== 0 ? READABLE : 0;
  }

  release(): void {
    this.server.close();
    const queue = this.queue;
    for (let i = this.head; i < queue.length; i++) queue[i]!.release(false);
    queue.length = 0;
    this.head = 0;
  }
}

// ---- node:net listeners: shared functions, `this` is the emitter ---------------------------------

function onConnect(this: TaggedSocket): void {
  const c = this[kConn];
  c.connecting = false;
  c.owner.emit(c, WRITABLE);
}

function onReadable(this: TaggedSocket): void {
  const c = this[kConn];
  if (c.readShut || c.closed) {
    // Nobody will read this: discard it so the stream keeps reading (and the peer keeps sending).
    while (this.read() !== null);
    return;
  }
  c.owner.emit(c, READABLE);
}

function onEnd(this: TaggedSocket): void {
  const c = this[kConn];
  c.eof = true;
  c.owner.emit(c, READABLE | HANGUP);
}

function onDrain(this: TaggedSocket): void {
  const c = this[kConn];
  c.writeBlocked = false;
  c.owner.emit(c, WRITABLE);
}

function onSocketError(this: TaggedSocket, err: Error): void {
  const c = this[kConn];
  if (c.error === 0) c.error = errnoOf(err);
  c.connecting = false;
  c.owner.emit(c, READABLE | WRITABLE | ERROR | HANGUP);
}

function onSocketClose(this: TaggedSocket): void {
  const c = this[kConn];
  c.gone = true;
  c.connecting = false;
  c.owner.emit(c, READABLE | WRITABLE | HANGUP);
}

function onConnection(this: TaggedServer, socket: net.Socket): void {
  const l = this[kListener];
  const c = new Conn(l.owner, socket, false);
  if (l.closed) {
    c.release(false);
    return;
  }
  const wasEmpty = l.head === l.queue.length;
  l.queue.push(c);
  if (wasEmpty) l.owner.emit(l, READABLE);
}

function onServerError(this: TaggedServer, err: Error): void {
  const l = this[kListener];
  if (l.error === 0) l.error = errnoOf(err);
  l.owner.emit(l, READABLE | ERROR);
}

/** The negative errno of a node:net error (os.constants.errno[code]), -EIO when it has none. */
export function errnoOf(err: unknown): number {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    const errno = ERRNO[code];
    if (typeof errno === 'number') return -errno;
  }
  const errno = (err as { errno?: unknown } | null)?.errno;
  if (typeof errno === 'number' && Number.isInteger(errno) && errno < 0) return errno;
  return -EIO;
}

// ---- argument checks, worded like the addon's (native/js_args.cc) --------------------------------

function argTypeError(name: string, expected: string): TypeError {
  const err = new TypeError(`The "${name}" argument must be of type ${expected}`) as TypeError & { code: string };
  err.code = 'ERR_INVALID_ARG_TYPE';
  return err;
}

function argRangeError(name: string, requirement: string, received: number): RangeError {
  const err = new RangeError(`The value of "${name}" is out of range. It must be ${requirement}. Received ${received}`) as RangeError & {
    code: string;
  };
  err.code = 'ERR_OUT_OF_RANGE';
  return err;
}

function checkInt(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number') throw argTypeError(name, 'number');
  if (!(Number.isInteger(value) && value >= min && value <= max)) {
    throw argRangeError(name, Number.isNaN(value) ? 'a number' : `an integer >= ${min} and <= ${max}`, value);
  }
  return value;
}

function checkBool(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw argTypeError(name, 'boolean');
  return value;
}

/** Returns the address family: 4 or 6. */
function checkHost(host: unknown): number {
  if (typeof host !== 'string') throw argTypeError('host', 'string');
  const family = net.isIP(host);
  if (family === 0) {
    const err = new TypeError(`Invalid IP address: ${host}`) as TypeError & { code: string };
    err.code = 'ERR_INVALID_IP_ADDRESS';
    throw err;
  }
  return family;
}

/** buf[offset, offset + length) must lie inside a Uint8Array (a Buffer is one). */
function checkRange(buf: unknown, offset: unknown, length: unknown): void {
  if (!(buf instanceof Uint8Array)) throw argTypeError('buffer', 'Uint8Array');
  if (typeof offset !== 'number') throw argTypeError('offset', 'number');
  if (typeof length !== 'number') throw argTypeError('length', 'number');
  const size = buf.length;
  if (!(offset >= 0 && offset <= size && Number.isInteger(offset))) {
    throw argRangeError('offset', Number.isNaN(offset) ? 'a number' : `an integer >= 0 and <= ${size}`, offset);
  }
  if (!(length >= 0 && length <= size - offset && Number.isInteger(length))) {
    throw argRangeError('length', Number.isNaN(length) ? 'a number' : `an integer >= 0 and <= ${size - offset}`, length);
  }
}

function closedError(): Error {
  const err = new Error('the coloop js backend is closed') as Error & { code: string };
  err.code = 'ERR_BACKEND_CLOSED';
  return err;
}

function toAddress(address: string | undefined, family: string | undefined, port: number | undefined): SocketAddress | null {
  if (address === undefined || port === undefined) return null;
  return { address, family: family === 'IPv6' ? 'IPv6' : 'IPv4', port };
}

/**
 * The descriptor table, the emulated calls and the event queue. `JsBackend` owns one; its `poll`
 * calls `collect`, its `register`/`unregister` land here, and `wake` is its (coalesced) onWake.
 */
export class JsSockets implements SocketApi {
  private readonly table: (Entry | undefined)[] = [];
  private readonly freeFds: number[] = [];
  /** Entries with pendingBits != 0, in the order they first became ready since the last collect. */
  private readonly pending: (Entry | null)[] = [];
  private pendingHead = 0;
  private pendingTail = 0;
  private immediate: NodeJS.Immediate | null = null;
  private closed = false;

  /** `wake` is called from Node's loop (setImmediate) when `collect` has something to report. */
  constructor(private readonly wake: () => void) {}

  // ---- SocketApi ---------------------------------------------------------------------------------

  listen(host: string, port: number, backlog: number, reusePort: boolean): Promise<number> {
    checkHost(host);
    checkInt(port, 'port', 0, 65535);
    checkInt(backlog, 'backlog', 0, INT32_MAX);
    checkBool(reusePort, 'reusePort');
    if (this.closed) throw closedError();
    if (reusePort) {
      const err = new Error('reusePort (SO_REUSEPORT) is not supported by the coloop js backend: node:net cannot set it') as Error & {
        code: string;
      };
      err.code = 'ERR_NOT_SUPPORTED';
      return Promise.reject(err);
    }
    const server = net.createServer({ allowHalfOpen: true, noDelay: true });
    const l = new Listener(this, server);
    return new Promise<number>((resolve, reject) => {
      const failed = (err: Error): void => reject(err);
      server.once('error', failed);
      server.listen({ host, port, backlog, exclusive: true }, () => {
        server.removeListener('error', failed);
        server.on('error', onServerError);
        if (this.closed) {
          l.closed = true;
          l.release();
          reject(closedError());
          return;
        }
        resolve(this.allocate(l));
      });
    });
  }

  connect(host: string, port: number): number {
    const family = checkHost(host);
    checkInt(port, 'port', 0, 65535);
    if (this.closed) throw closedError();
    const socket = net.connect({ host, port, noDelay: true, allowHalfOpen: true });
    const c = new Conn(this, socket, true);
    c.ipv6 = family === 6;
    return this.allocate(c);
  }

  accept(fd: number): number {
    const e = this.lookup(fd, 'accept');
    if (!e.isListener) return -EINVAL;
    const l = e as Listener;
    if (l.error !== 0) {
      const err = l.error;
      l.error = 0;
      return err;
    }
    const queue = l.queue;
    if (l.head === queue.length) return -EAGAIN;
    const c = queue[l.head]!;
    queue[l.head++] = null;
    if (l.head === queue.length) {
      queue.length = 0;
      l.head = 0;
    }
    return this.allocate(c);
  }

  read(fd: number, buf: Uint8Array, offset: number, length: number): number {
    if (typeof fd !== 'number') throw argTypeError('fd', 'number');
    checkRange(buf, offset, length);
    const e = this.table[fd] ?? this.badFd(fd, 'read');
    if (e.isListener) return -ENOTCONN;
    const c = e as Conn;
    if (c.error !== 0 && !c.eof) return c.error;
    if (c.readShut) return 0;
    if (c.connecting) return -EAGAIN;
    if (length === 0) return 0;
    const socket = c.socket;
    let copied = 0;
    let chunk = c.chunk;
    let start = c.chunkOffset;
    for (;;) {
      if (chunk === null) {
        // After a chunk, only go back to the stream when it holds more; the first call also asks
        // it to read on (and to emit 'readable' again) when it is empty.
        if (copied > 0 && socket.readableLength === 0) break;
        chunk = socket.read() as Buffer | null;
        if (chunk === null) break;
        start = 0;
      }
      const available = chunk.length - start;
      const room = length - copied;
      if (available <= room) {
        buf.set(start === 0 ? chunk : chunk.subarray(start), offset + copied);
        copied += available;
        chunk = null;
        if (copied === length) break;
      } else {
        buf.set(chunk.subarray(start, start + room), offset + copied);
        copied = length;
        start += room;
        break;
      }
    }
    c.chunk = chunk;
    c.chunkOffset = start;
    if (copied > 0) return copied;
    if (c.eof || c.gone || isEnded(socket)) return 0;
    return -EAGAIN;
  }

  write(fd: number, buf: Uint8Array, offset: number, length: number): number {
    if (typeof fd !== 'number') throw argTypeError('fd', 'number');
    checkRange(buf, offset, length);
    const e = this.table[fd] ?? this.badFd(fd, 'write');
    if (e.isListener) return -EPIPE;
    const c = e as Conn;
    if (c.error !== 0) return c.error;
    if (c.writeShut || c.gone) return -EPIPE;
    if (c.connecting || c.writeBlocked) return -EAGAIN;
    if (length === 0) return 0;
    // Like a kernel send buffer, take at most what fits below the high-water mark: the caller
    // keeps the rest, and its own flow control (a waiting write, a transport's pauseWriting)
    // sees the backpressure instead of Node's queue growing with every write.
    const room = SEND_BUFFER_BYTES - c.socket.writableLength;
    if (room <= 0) {
      c.writeBlocked = true;
      return -EAGAIN;
    }
    const take = Math.min(length, room);
    // The caller reuses its buffer as soon as we return: node:net must get its own bytes.
    const copy = Buffer.allocUnsafe(take);
    copy.set(buf.subarray(offset, offset + take));
    if (!c.socket.write(copy)) c.writeBlocked = true;
    // A short write promises a WRITABLE edge later (the caller now waits for one). node:net may
    // have sent the bytes at once and owe no 'drain': announce the room ourselves.
    else if (take < length) this.emit(c, WRITABLE);
    return take;
  }

  /** One write per buffer, stopping at the first that is not taken whole (as a short sendmsg). */
  writev(fd: number, buffers: readonly Uint8Array[], offset: number): number {
    if (!Array.isArray(buffers)) throw argTypeError('buffers', 'an Array of Uint8Array');
    if (buffers.length === 0 || buffers.length > 64) throw new RangeError(`buffers.length must be from 1 to 64, not ${buffers.length}`);
    let total = 0;
    for (let i = 0; i < buffers.length; i++) {
      const buf = buffers[i]!;
      if (!(buf instanceof Uint8Array)) throw argTypeError('buffers[i]', 'Uint8Array');
      const from = i === 0 ? offset : 0;
      const n = this.write(fd, buf, from, buf.length - from);
      if (n < 0) return total > 0 ? total : n;
      total += n;
      if (n < buf.length - from) break;
    }
    return total;
  }

  shutdown(fd: number, how: number): number {
    if (typeof fd !== 'number') throw argTypeError('fd', 'number');
    checkInt(how, 'how', 0, 2);
    const e = this.table[fd] ?? this.badFd(fd, 'shutdown');
    if (e.isListener) return -ENOTCONN;
    const c = e as Conn;
    if (c.error !== 0 || c.gone) return -ENOTCONN;
    if (how !== 1 && !c.readShut) {
      c.readShut = true;
      c.chunk = null;
      while (c.socket.read() !== null);
      this.emit(c, READABLE);
    }
    if (how !== 0 && !c.writeShut) {
      c.writeShut = true;
      c.socket.end();
    }
    return 0;
  }

  close(fd: number): number {
    const e = this.lookup(fd, 'close');
    this.table[fd] = undefined;
    this.freeFds.push(fd);
    e.closed = true;
    e.token = -1;
    e.fd = -1;
    if (e.isListener) (e as Listener).release();
    else (e as Conn).release(true);
    return 0;
  }

  socketError(fd: number): number {
    const e = this.lookup(fd, 'getsockopt');
    return e.isListener ? 0 : (e as Conn).error;
  }

  localAddress(fd: number): SocketAddress {
    const e = this.lookup(fd, 'getsockname');
    let address: SocketAddress | null;
    if (e.isListener) {
      const a = (e as Listener).server.address();
      address = a !== null && typeof a === 'object' ? toAddress(a.address, a.family, a.port) : null;
    } else {
      const a = (e as Conn).socket.address() as Partial<net.AddressInfo>;
      address = toAddress(a.address, a.family, a.port);
      // Not bound yet (connect starts on the next tick): getsockname reports the unbound address.
      if (address === null && (e as Conn).connecting) {
        address = (e as Conn).ipv6 ? { address: '::', family: 'IPv6', port: 0 } : { address: '0.0.0.0', family: 'IPv4', port: 0 };
      }
    }
    if (address === null) throw errnoError(-EINVAL, 'getsockname');
    return address;
  }

  remoteAddress(fd: number): SocketAddress {
    const e = this.lookup(fd, 'getpeername');
    const socket = e.isListener ? null : (e as Conn).socket;
    const address = socket === null ? null : toAddress(socket.remoteAddress, socket.remoteFamily, socket.remotePort);
    if (address === null) throw errnoError(-ENOTCONN, 'getpeername');
    return address;
  }

  // ---- readiness registration (Backend.register / unregister) --------------------------------------

  register(fd: number, token: number): void {
    if (typeof fd !== 'number') throw argTypeError('fd', 'number');
    checkInt(token, 'token', 0, INT32_MAX);
    const e = this.table[fd] ?? this.badFd(fd, 'epoll_ctl');
    if (e.token >= 0) throw errnoError(-EEXIST, 'epoll_ctl');
    e.token = token;
    // Like epoll_ctl(ADD): what is ready already is reported once.
    const bits = e.readiness();
    if (bits !== 0) this.emit(e, bits);
  }

  unregister(fd: number): void {
    const e = this.lookup(fd, 'epoll_ctl');
    if (e.token < 0) throw errnoError(-ENOENT, 'epoll_ctl');
    e.token = -1;
  }

  // ---- events ---------------------------------------------------------------------------------------

  /** Records `bits` for `e` and makes sure the loop is woken (once per turn) to collect them. */
  emit(e: Entry, bits: number): void {
    if (e.token < 0) return;
    if (e.pendingBits === 0) this.pending[this.pendingTail++] = e;
    e.pendingBits |= bits;
    if (this.immediate === null) this.immediate = setImmediate(this.fireWake);
  }

  /**
   * Writes the gathered `(token, bits)` pairs into `out` (capacity out.length / 2 pairs), one pair
   * per descriptor with its bits ORed; returns the count. What does not fit stays queued, and
   * another wake is scheduled for it.
   */
  collect(out: Int32Array): number {
    const capacity = out.length >> 1;
    const pending = this.pending;
    const tail = this.pendingTail;
    let i = this.pendingHead;
    let n = 0;
    while (i < tail && n < capacity) {
      const e = pending[i]!;
      pending[i++] = null;
      const bits = e.pendingBits;
      e.pendingBits = 0;
      // Unregistered or closed since: dropped, like the events of an fd closed mid-batch.
      if (e.token < 0) continue;
      out[2 * n] = e.token;
      out[2 * n + 1] = bits;
      n++;
    }
    if (i === tail) {
      this.pendingHead = this.pendingTail = 0;
    } else {
      this.pendingHead = i;
      if (this.immediate === null) this.immediate = setImmediate(this.fireWake);
    }
    return n;
  }

  /** Number of descriptors open in the table (for tests and diagnostics). */
  get openCount(): number {
    let count = 0;
    for (const e of this.table) if (e !== undefined) count++;
    return count;
  }

  /** Destroys every socket and server still open; later calls throw EBADF, listen/connect throw. */
  closeAll(): void {
    this.closed = true;
    if (this.immediate !== null) clearImmediate(this.immediate);
    this.immediate = null;
    const table = this.table;
    for (let fd = 0; fd < table.length; fd++) {
      const e = table[fd];
      if (e === undefined) continue;
      table[fd] = undefined;
      e.closed = true;
      e.token = -1;
      if (e.isListener) (e as Listener).release();
      else (e as Conn).release(false);
    }
    table.length = 0;
    this.freeFds.length = 0;
    this.pending.length = 0;
    this.pendingHead = this.pendingTail = 0;
  }

  // ---- internals ------------------------------------------------------------------------------------

  private readonly fireWake = (): void => {
    this.immediate = null;
    if (!this.closed && this.pendingHead < this.pendingTail) this.wake();
  };

  private allocate(e: Entry): number {
    const fd = this.freeFds.length > 0 ? this.freeFds.pop()! : Math.max(this.table.length, FIRST_FD);
    this.table[fd] = e;
    e.fd = fd;
    return fd;
  }

  private lookup(fd: number, syscall: string): Entry {
    if (typeof fd !== 'number') throw argTypeError('fd', 'number');
    return this.table[fd] ?? this.badFd(fd, syscall);
  }

  /** Throws RangeError for a number that is no descriptor at all, EBADF for one not open here. */
  private badFd(fd: number, syscall: string): never {
    checkInt(fd, 'fd', 0, INT32_MAX);
    throw errnoError(-EBADF, syscall);
  }
}

/** EOF pushed into the stream ('end' follows on a later tick, once it is drained). */
function isEnded(socket: net.Socket): boolean {
  return (socket as unknown as { _readableState?: { ended?: boolean } })._readableState?.ended === true && socket.readableLength === 0;
}
