import type { SocketApi } from '../backend/backend.js';
import { CancelledError, describe, errnoError, socketStateError } from '../errors.js';
import type { IoHandler, Loop } from '../loop.js';
import { ERROR as ERROR_, HANGUP as HANGUP_, READABLE as READABLE_, WRITABLE as WRITABLE_ } from '../native.js';
import { Instruction, type Operation } from '../operation.js';
import { spawn } from '../primitives.js';
import type { Runnable } from '../run-queue.js';
import { NEXT as NEXT_, type Task } from '../task.js';
import { peerOf } from './connection.js';
import { nameable } from './byte-io.js';
import { EAGAIN as EAGAIN_ } from './errno.js';
import { listen, type ListenOptions, type Server } from './server.js';

// Local copies of imported constants (see connection.ts): folded into the optimized code, where an
// imported binding is read through a cell and checked at every use.
const ERROR = ERROR_;
const HANGUP = HANGUP_;
const READABLE = READABLE_;
const WRITABLE = WRITABLE_;
const NEXT = NEXT_;
const EAGAIN = EAGAIN_;

/**
 * asyncio's Protocol: callbacks for one connection, called from the loop's batch (never from
 * inside an event dispatch). `dataReceived` gets a view of a buffer the transport reuses: it is
 * valid until the callback returns; copy it to keep it.
 */
export interface Protocol {
  connectionMade?(transport: Transport): void;
  dataReceived?(data: Uint8Array): void;
  /** The peer half-closed. Return true to keep the transport open for writing; else it closes. */
  eofReceived?(): boolean | void;
  /** The transport closed: `err` is why, if it was not a clean close. */
  connectionLost?(err?: Error): void;
  /** Flow control: the write buffer passed the high-water mark, and went back below the low one. */
  pauseWriting?(): void;
  resumeWriting?(): void;
}

/**
 * asyncio's BufferedProtocol: the transport reads straight into the protocol's buffer. No copy, no
 * allocation per read.
 */
export interface BufferedProtocol extends Omit<Protocol, 'dataReceived'> {
  /** A buffer to read into (at least 1 byte); `sizeHint` is what the transport would like. */
  getBuffer(sizeHint: number): Uint8Array;
  /** `n` bytes were written at the start of the buffer getBuffer returned. */
  bufferUpdated(n: number): void;
}

export type AnyProtocol = Protocol | BufferedProtocol;

export interface CreateServerOptions extends ListenOptions {
  /** Told about an error thrown by a protocol callback (the transport is then aborted). */
  onError?: (err: unknown) => void;
  /** Write buffer size above which `pauseWriting` is called. Default 64 KiB (low mark: a quarter). */
  highWaterMark?: number;
}

const READ_SIZE = 64 * 1024;
/** Buffers one writev may gather (the addon's limit). */
const MAX_GATHER = 64;
/** Reads per runStep before other work gets its turn (a fast sender must not starve the rest). */
const READS_PER_STEP = 4;

/** The connection side a Protocol writes to. */
export class Transport implements IoHandler, Runnable {
  readonly remoteAddress: string;
  readonly remotePort: number;
  private readonly token: number;
  private readable = true;
  private writable = true;
  private readingPaused = false;
  private writingPaused = false;
  private queued = false;
  private closing = false;
  private closed = false;
  private eofPending = false;
  private hungUp = false;
  private ended = false;
  /** Bytes the kernel did not take yet, in order; `headOffset` bytes of the first are sent. */
  private pending: Uint8Array[] = [];
  private headOffset = 0;
  private pendingBytes = 0;
  private readonly lowWaterMark: number;
  /**
   * Whether the protocol is a BufferedProtocol (it has getBuffer), decided once, as asyncio does
   * when a transport takes its protocol.
   */
  private readonly buffered: boolean;
  /**
   * The buffer last read into, its ArrayBuffer if the addon can be handed it, and its offset:
   * reads into it and writes from it name the ArrayBuffer (see byte-io.ts).
   */
  private readView: Uint8Array | null = null;
  private readMemory: ArrayBuffer | null = null;
  private readAt = 0;

  /** @internal */
  constructor(
    private readonly loop: Loop,
    private readonly sockets: SocketApi,
    private readonly fd: number,
    private readonly protocol: AnyProtocol,
    private readonly owner: ProtocolServer,
    private readonly highWaterMark: number,
  ) {
    this.lowWaterMark = highWaterMark >> 2;
    this.buffered = typeof (protocol as BufferedProtocol).getBuffer === 'function';
    const peer = peerOf(sockets, fd);
    this.remoteAddress = peer.address;
    this.remotePort = peer.port;
    this.token = loop.register(fd, this);
  }

  get isClosing(): boolean {
    return this.closing;
  }

  /** Bytes buffered, waiting for the kernel. */
  get writeBufferSize(): number {
    return this.pendingBytes;
  }

  /**
   * Sends `data` (or `length` bytes of it from `offset`), at once if the kernel takes it, else
   * buffered (copied) until it does.
   */
  write(data: Uint8Array | string, offset = 0, length?: number): void {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (!(bytes instanceof Uint8Array)) throw new TypeError(`write() takes a Uint8Array or string, not ${describe(data)}`);
    const end = length === undefined ? bytes.length : offset + length;
    if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(end) || end < offset || end > bytes.length) {
      throw new RangeError(`write(): offset ${offset} and length ${length} do not lie inside the ${bytes.length}-byte buffer`);
    }
    if (this.closing || this.eofPending || this.ended) throw socketStateError('ERR_STREAM_WRITE_AFTER_END', 'write after end or close');
    if (end === offset) return;
    if (this.pendingBytes === 0 && this.writable) {
      while (offset < end) {
        const memory = this.readMemory;
        const n =
          bytes === this.readView && memory !== null
            ? this.sockets.writeBuffer!(this.fd, memory, this.readAt + offset, end - offset)
            : this.sockets.write(this.fd, bytes, offset, end - offset);
        if (n === EAGAIN) {
          this.writable = false;
          break;
        }
        if (n < 0) {
          this.abortWith(errnoError(n, 'write'));
          return;
        }
        offset += n;
      }
      if (offset === end) return;
      this.writable = false;
    }
    // The caller may reuse its buffer (dataReceived's view is reused): keep a copy.
    this.pending.push(bytes.slice(offset, end));
    this.pendingBytes += end - offset;
    if (!this.writingPaused && this.pendingBytes > this.highWaterMark) {
      this.writingPaused = true;
      this.call('pauseWriting');
    }
  }

  /** Half-close once the buffered bytes are sent. */
  end(): void {
    if (this.closing || this.eofPending || this.ended) return;
    if (this.pendingBytes > 0) this.eofPending = true;
    else this.shutdownWrite();
  }

  /** Closes after the buffered bytes are sent. */
  close(): void {
    if (this.closing) return;
    this.closing = true;
    if (this.pendingBytes === 0) this.finish(undefined);
  }

  /** Closes at once, dropping buffered bytes. */
  abort(): void {
    this.closing = true;
    this.finish(undefined);
  }

  pauseReading(): void {
    this.readingPaused = true;
  }

  resumeReading(): void {
    if (!this.readingPaused) return;
    this.readingPaused = false;
    if (this.readable) this.schedule();
  }

  onIo(bits: number): void {
    if (bits & (HANGUP | ERROR)) this.hungUp = true;
    if (bits & (READABLE | HANGUP | ERROR)) this.readable = true;
    if (bits & (WRITABLE | HANGUP | ERROR)) this.writable = true;
    if ((this.readable && !this.readingPaused) || (this.writable && this.pendingBytes > 0)) this.schedule();
  }

  /** In the batch: flush what is buffered, then deliver what arrived. */
  runStep(): void {
    this.queued = false;
    if (this.closed) return;
    if (this.pendingBytes > 0 && this.writable) this.flush();
    for (let i = 0; i < READS_PER_STEP && this.readable && !this.readingPaused && !this.closed; i++) this.readOnce();
    // Still readable after the budget: come back in the next batch.
    if (this.readable && !this.readingPaused && !this.closed) this.schedule();
  }

  /** @internal Starts the protocol. */
  start(): void {
    if (!this.call('connectionMade', this)) return;
    this.schedule();
  }

  // The per-read calls (getBuffer, bufferUpdated, dataReceived) are named at their call sites:
  // `call(name)` looks the method up by a variable key, a megamorphic load on every read.
  private readOnce(): void {
    const protocol = this.protocol;
    let buf: Uint8Array;
    if (this.buffered) {
      try {
        buf = (protocol as BufferedProtocol).getBuffer(READ_SIZE);
      } catch (err) {
        this.protocolFailed(err);
        return;
      }
      if (!(buf instanceof Uint8Array) || buf.length === 0) {
        this.protocolFailed(new TypeError(`getBuffer() must return a non-empty Uint8Array, not ${describe(buf)}`));
        return;
      }
    } else {
      buf = readBuffer;
    }
    if (buf !== this.readView) {
      this.readView = buf;
      this.readMemory = nameable(this.sockets, buf.buffer);
      this.readAt = buf.byteOffset;
    }
    const memory = this.readMemory;
    const n = memory !== null ? this.sockets.readBuffer!(this.fd, memory, this.readAt, buf.length) : this.sockets.read(this.fd, buf, 0, buf.length);
    if (n === EAGAIN) {
      this.readable = false;
      return;
    }
    if (n < 0) {
      this.abortWith(errnoError(n, 'read'));
      return;
    }
    if (n === 0) {
      this.readable = false;
      this.readingPaused = true;
      const keepOpen = this.callResult('eofReceived');
      if (!keepOpen && !this.closed) this.close();
      return;
    }
    // Short read: drained, unless the peer hung up in the same edge (then EOF is next).
    if (n < buf.length && !this.hungUp) this.readable = false;
    try {
      if (this.buffered) {
        const updated = (protocol as BufferedProtocol).bufferUpdated;
        if (typeof updated === 'function') updated.call(protocol, n);
      } else {
        const received = (protocol as Protocol).dataReceived;
        if (typeof received === 'function') received.call(protocol, buf.subarray(0, n));
      }
    } catch (err) {
      this.protocolFailed(err);
    }
  }

  private flush(): void {
    const pending = this.pending;
    while (pending.length > 0) {
      // Several buffered writes go out in one gathering call (writev), up to 64 at a time.
      const n =
        pending.length === 1
          ? this.sockets.write(this.fd, pending[0]!, this.headOffset, pending[0]!.length - this.headOffset)
          : this.sockets.writev(this.fd, pending.length <= MAX_GATHER ? pending : pending.slice(0, MAX_GATHER), this.headOffset);
      if (n === EAGAIN) {
        this.writable = false;
        return;
      }
      if (n < 0) {
        this.abortWith(errnoError(n, pending.length === 1 ? 'write' : 'writev'));
        return;
      }
      this.pendingBytes -= n;
      // Drop the buffers the kernel took whole; the first one left may be partly sent.
      let taken = n + this.headOffset;
      while (pending.length > 0 && taken >= pending[0]!.length) {
        taken -= pending[0]!.length;
        pending.shift();
      }
      this.headOffset = taken;
    }
    if (this.writingPaused && this.pendingBytes <= this.lowWaterMark) {
      this.writingPaused = false;
      this.call('resumeWriting');
    }
    if (this.eofPending) {
      this.eofPending = false;
      this.shutdownWrite();
    }
    if (this.closing) this.finish(undefined);
  }

  private shutdownWrite(): void {
    this.ended = true;
    const r = this.sockets.shutdown(this.fd, 1);
    if (r < 0) this.abortWith(errnoError(r, 'shutdown'));
  }

  private schedule(): void {
    if (this.queued || this.closed) return;
    this.queued = true;
    this.loop.enqueue(this);
  }

  private abortWith(err: Error): void {
    this.closing = true;
    this.finish(err);
  }

  private finish(err: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = [];
    this.pendingBytes = 0;
    this.readView = null;
    this.readMemory = null;
    this.loop.unregister(this.fd, this.token);
    this.sockets.close(this.fd);
    this.owner.transportClosed(this);
    this.call('connectionLost', err);
  }

  private protocolFailed(err: unknown): void {
    this.owner.reportError(err);
    this.abortWith(err instanceof Error ? err : new Error(String(err)));
  }

  /** Calls a protocol method if it has one; false if it threw (the transport is then aborted). */
  private call(name: string, arg?: unknown): boolean {
    const fn = (this.protocol as unknown as Record<string, ((arg?: unknown) => unknown) | undefined>)[name];
    if (typeof fn !== 'function') return true;
    try {
      fn.call(this.protocol, arg);
      return true;
    } catch (err) {
      if (name === 'connectionLost') this.owner.reportError(err);
      else this.protocolFailed(err);
      return false;
    }
  }

  private callResult(name: 'eofReceived'): boolean {
    const fn = this.protocol[name];
    if (typeof fn !== 'function') return false;
    try {
      return Boolean(fn.call(this.protocol));
    } catch (err) {
      this.protocolFailed(err);
      return true;
    }
  }
}

const readBuffer = new Uint8Array(READ_SIZE);

/** The accept side of createServer: transports, their count, and where their errors go. */
class ProtocolServer {
  readonly transports = new Set<Transport>();
  private drained: Task<unknown> | null = null;

  constructor(readonly onError: (err: unknown) => void) {}

  transportClosed(transport: Transport): void {
    this.transports.delete(transport);
    if (this.transports.size === 0 && this.drained !== null) {
      const task = this.drained;
      this.drained = null;
      task.resume(NEXT, undefined);
    }
  }

  reportError(err: unknown): void {
    try {
      this.onError(err);
    } catch (thrown) {
      process.nextTick(() => {
        throw thrown;
      });
    }
  }

  /** Waits until every transport has closed. */
  allClosed(): Operation<void> {
    return new WaitAllClosed(this);
  }

  park(task: Task<unknown>): boolean {
    if (this.transports.size === 0) return true;
    this.drained = task;
    return false;
  }

  unpark(): void {
    this.drained = null;
  }
}

class WaitAllClosed extends Instruction<void> {
  constructor(private readonly server: ProtocolServer) {
    super();
  }
  start(task: Task<unknown>): boolean {
    if (!this.server.park(task)) return false;
    task.resumeMode = NEXT;
    task.resumeValue = undefined;
    return true;
  }
  override abort(): void {
    this.server.unpark();
  }
}

/**
 * asyncio's `loop.create_server`: listens, and for each connection calls `protocolFactory()` and
 * drives the protocol with callbacks — no task per connection, the leanest path. The accept loop
 * runs as a task in the caller's scope; after `server.close()` it waits for open transports to
 * close, and cancelling it aborts them.
 */
export function* createServer(protocolFactory: () => AnyProtocol, options: CreateServerOptions): Operation<Server> {
  if (typeof protocolFactory !== 'function') throw new TypeError(`createServer() takes a protocol factory, not ${describe(protocolFactory)}`);
  const highWaterMark = options.highWaterMark ?? 64 * 1024;
  if (!Number.isInteger(highWaterMark) || highWaterMark < 1) throw new RangeError(`createServer(): highWaterMark must be a positive integer, not ${describe(highWaterMark)}`);
  const onError = options.onError ?? ((err: unknown) => console.error(`coloop createServer: a protocol callback threw: ${err instanceof Error ? err.stack : String(err)}`));
  const server = yield* listen(options);
  const owner = new ProtocolServer(onError);
  yield* spawn(function* acceptLoop(): Operation<void> {
    const { loop, sockets } = server;
    try {
      for (;;) {
        let fd: number;
        try {
          fd = yield* server.acceptDescriptor();
        } catch (err) {
          if (server.isClosed) break;
          throw err;
        }
        let protocol: AnyProtocol;
        try {
          protocol = protocolFactory();
        } catch (err) {
          sockets.close(fd);
          owner.reportError(err);
          continue;
        }
        let transport: Transport;
        try {
          transport = new Transport(loop, sockets, fd, protocol, owner, highWaterMark);
        } catch (err) {
          sockets.close(fd);
          owner.reportError(err);
          continue;
        }
        owner.transports.add(transport);
        transport.start();
      }
      yield* owner.allClosed();
    } catch (err) {
      // Nothing will accept from the listening socket again: it is closed, not left open.
      server.close();
      if (err instanceof CancelledError) for (const transport of [...owner.transports]) transport.abort();
      throw err;
    }
  });
  return server;
}
