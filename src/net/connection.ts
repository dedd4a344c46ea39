import { performance } from 'node:perf_hooks';
import { NOT_READ as NOT_READ_, type ReadAhead, type SocketApi } from '../backend/backend.js';
import { describe, errnoError, socketStateError } from '../errors.js';
import type { IoHandler, Loop, TimerWaiter } from '../loop.js';
import { ERROR as ERROR_, HANGUP as HANGUP_, READABLE as READABLE_, WRITABLE as WRITABLE_ } from '../native.js';
import type { Operation } from '../operation.js';
import { done } from '../operation.js';
import { NEXT as NEXT_, runningTask, THROW as THROW_, type Task } from '../task.js';
import { nameable } from './byte-io.js';
import { EAGAIN as EAGAIN_ } from './errno.js';
import { ReusableOp } from './reusable-op.js';

// Local copies of imported constants. An imported binding is live, so V8 reads it through a cell
// and checks it at every use (~7 instructions; ~20 such reads per echoed message, callgrind); a
// module's own const is folded into the optimized code.
const NOT_READ = NOT_READ_;
const ERROR = ERROR_;
const HANGUP = HANGUP_;
const READABLE = READABLE_;
const WRITABLE = WRITABLE_;
const NEXT = NEXT_;
const THROW = THROW_;
const EAGAIN = EAGAIN_;

/** Bytes `read()` asks for when no maximum is given. */
const DEFAULT_READ_SIZE = 64 * 1024;

const SHARED_SIZE = 64 * 1024;
/**
 * Where the backend's poll reads ahead for readers parked on sharedBuffer: one after another
 * (packed), from the start each poll, so the region stays in the cache. As large as the driver's
 * read-ahead budget (READ_AHEAD_BUDGET): a poll reads no more than that in all. It lies in the same
 * ArrayBuffer as sharedBuffer, past its end, so a reader's bytes move into place with copyWithin
 * (no view to allocate; 17 against 45 ns for set(subarray) at 64 B, in a loop). The move is most
 * of what a read into sharedBuffer costs beyond a read into a buffer of one's own: callgrind
 * counted ~390 more user-space instructions per 64 B echo, ~195 of them in copyWithin.
 */
const LANDING_SIZE = 128 * 1024;
const SHARED = new ArrayBuffer(SHARED_SIZE + LANDING_SIZE);
/**
 * A 64 KiB buffer every task may read into, for a read-then-write loop that keeps one cache-hot
 * buffer rather than one per connection:
 *
 *     const n = yield* conn.readInto(sharedBuffer);
 *     yield* conn.write(sharedBuffer, 0, n);
 *
 * The rule: bytes read into it are yours until your task's next `yield*` (another task may read
 * into it once yours waits), except that `write()` may always be given them: a write that has to
 * wait for the kernel copies the bytes it has not sent yet before it waits. Any view of it (a
 * `subarray`) is the shared buffer too; a view of its ArrayBuffer past its 64 KiB is refused. A
 * read into it never lands while the task waits: bytes read ahead for it wait in LANDING and move
 * in when the task resumes.
 *
 * Read into it in the task that uses the bytes, not inside `withTimeout`, `race` or `all`: those
 * run the read in a child task, whose result reaches yours a batch later, when other tasks may
 * have used the buffer. For a time limit on reads, set `conn.idleTimeout`.
 */
export const sharedBuffer = new Uint8Array(SHARED, 0, SHARED_SIZE);
const LANDING = new Uint8Array(SHARED, SHARED_SIZE, LANDING_SIZE);
const WHOLE = new Uint8Array(SHARED);
/** The offset of a packed ask (see askAhead): the backend reads at the next free place. */
const PACKED = -1;
/**
 * A reader into sharedBuffer whose last read brought this many bytes or more is not read ahead
 * for: it reads for itself when its task runs, straight into sharedBuffer. A read ahead saves one
 * call into the addon (~0.2 us) and costs a move out of LANDING; at 8 KiB and up the move costs
 * more. Measured at 100 x 16 KiB (`bench/echo/suite.js --baseline`, six rounds, median of the
 * per-round ratios of server CPU per message): reading ahead for every such reader 1.02x, this
 * rule 1.02x, against never reading ahead for sharedBuffer; both within this machine's noise (the
 * same build against itself: 0.999, rounds 0.955-1.018). For small messages the read ahead is what
 * keeps sharedBuffer level with a buffer of one's own.
 */
const BULK_READ = 8 * 1024;


/**
 * A TCP connection. Reads and writes are operations: they complete at once when the kernel can
 * take them (optimistic), and wait for readiness only after EAGAIN. Readiness comes from one
 * edge-triggered registration for both directions, kept as two flags: a drained direction is not
 * tried again until its next edge.
 */
export class Connection implements IoHandler {
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** False once the kernel said EAGAIN (or a read came back short); true again on the next edge. */
  private readable = true;
  private writable: boolean;
  private closed = false;
  private ended = false;
  /** The peer hung up or an error is pending: a short read no longer means "wait for an edge". */
  private hungUp = false;
  private readonly token: number;
  private readonly reader = new ReadOp(this);
  private readonly writer = new WriteOp(this);
  /** Only a connecting socket has one: an accepted connection never waits for a handshake. */
  private connector: ConnectOp | null = null;
  /** The backend's reads for parked readers (native), or null. */
  private readonly ahead: ReadAhead | null;
  /** The buffer the backend reads ahead into (see askAhead), and where in it the last ask was. */
  private aheadTarget: Uint8Array | null = null;
  private aheadOffset = 0;
  /** Bytes read ahead when no reader was left to take them; the next reads are served from here. */
  private stashed: Uint8Array | null = null;

  /** @internal Use `connect()` or `Server.accept()`. */
  constructor(
    readonly loop: Loop,
    readonly sockets: SocketApi,
    readonly fd: number,
    connecting: boolean,
    remote?: { address: string; port: number },
  ) {
    this.writable = !connecting;
    this.ahead = loop.backend.readAhead;
    try {
      this.token = loop.register(fd, this);
    } catch (err) {
      sockets.close(fd);
      throw err;
    }
    const peer = remote ?? (connecting ? undefined : peerOf(sockets, fd));
    this.remoteAddress = peer?.address ?? '';
    this.remotePort = peer?.port ?? 0;
  }

  /**
   * Milliseconds a read may wait for data before it throws ERR_IDLE_TIMEOUT (0, the default: no
   * limit). `serve({ idleTimeout })` sets it on every connection it accepts.
   */
  idleTimeout = 0;

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Reads what is available, up to `max` bytes (default 64 KiB), into a new Uint8Array; waits
   * if nothing is. Returns null at end of stream.
   */
  read(max: number = DEFAULT_READ_SIZE): Operation<Uint8Array | null> {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`read() takes a positive integer size, not ${describe(max)}`);
    // Read into a shared scratch buffer and copy out exactly what came: the read completes
    // synchronously (at once or inside the edge's dispatch), so no two reads share it at a time.
    if (scratch.length < max) scratch = new Uint8Array(max);
    return this.readOp(scratch, 0, max, true) as Operation<Uint8Array | null>;
  }

  /** Reads into `buf` (no allocation): the number of bytes read, 0 at end of stream. */
  readInto(buf: Uint8Array, offset = 0, length: number = buf.length - offset): Operation<number> {
    if (!(buf instanceof Uint8Array)) throw new TypeError(`readInto() takes a Uint8Array, not ${describe(buf)}`);
    checkRange(buf, offset, length, 'readInto');
    if (length === 0) throw new RangeError('readInto() needs room for at least one byte');
    return this.readOp(buf, offset, length, false) as Operation<number>;
  }

  /** Writes every byte of `data`; completes when the kernel has taken all of them. */
  write(data: Uint8Array | string, offset = 0, length?: number): Operation<void> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (!(bytes instanceof Uint8Array)) throw new TypeError(`write() takes a Uint8Array or string, not ${describe(data)}`);
    const len = length ?? bytes.length - offset;
    checkRange(bytes, offset, len, 'write');
    if (this.ended) throw socketStateError('ERR_STREAM_WRITE_AFTER_END', 'write after end');
    this.checkOpen();
    this.writer.prepare(bytes, offset, len);
    return this.writer;
  }

  /** Half-close: sends FIN after what was written; reading goes on until the peer ends too. */
  end(): void {
    if (this.closed || this.ended) return;
    this.ended = true;
    const r = this.sockets.shutdown(this.fd, 1);
    if (r < 0) throw errnoError(r, 'shutdown');
  }

  /** Closes the connection. A task waiting in read or write gets an ERR_SOCKET_CLOSED error. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.loop.unregister(this.fd, this.token);
    this.sockets.close(this.fd);
    const err = closedError;
    this.reader.fail(err);
    this.writer.fail(err);
    this.connector?.fail(err);
    this.reader.disarm();
  }

  onIo(bits: number, event: number): void {
    if (bits & (HANGUP | ERROR)) this.hungUp = true;
    if (bits & (READABLE | HANGUP | ERROR)) {
      this.readable = true;
      const ahead = this.ahead;
      const r = ahead === null ? NOT_READ : ahead.results[2 * event]!;
      if (r === NOT_READ) {
        // Native: the reader reads when its task runs (see wake). The js backend's reads copy
        // from chunks node:net has already read, so there they are made at once, as before.
        if (ahead === null && !this.reader.shared) this.reader.ready();
        else this.reader.wake();
      } else {
        this.noteRead(r, ahead!.results[2 * event + 1]!);
        // No reader to take the bytes (an ask is withdrawn whenever one leaves, so this is not
        // expected): they are kept for the next read, never lost.
        if (!this.reader.takeAhead(r) && r > 0) {
          if (this.aheadOffset === PACKED) this.stash(LANDING, this.packedAt(), r);
          else this.stash(this.aheadTarget!, this.aheadOffset, r);
        }
      }
    }
    if (bits & (WRITABLE | HANGUP | ERROR)) {
      this.writable = true;
      this.writer.ready();
      this.connector?.ready();
    }
  }

  /** @internal Waits until a connect in progress has an outcome; a failure names `host:port`. */
  waitConnected(host: string, port: number): Operation<void> {
    const connector = (this.connector ??= new ConnectOp(this));
    connector.prepare(host, port);
    return connector;
  }

  /** @internal */
  writableNow(): boolean {
    return this.writable;
  }

  /** @internal One read attempt: bytes, 0 at EOF, or EAGAIN (then the read side waits for an edge). */
  tryRead(buf: Uint8Array, offset: number, length: number): number {
    if (this.stashed !== null) return this.unstash(buf, offset, length);
    if (!this.readable) return EAGAIN;
    // The buffer the reader prepared (its ArrayBuffer looked up then: see byte-io.ts).
    const reader = this.reader;
    const memory = reader.lastMemory;
    const n =
      buf === reader.lastBuf && memory !== null
        ? this.sockets.readBuffer!(this.fd, memory, reader.lastAt + offset, length)
        : this.sockets.read(this.fd, buf, offset, length);
    this.noteRead(n, length);
    return n;
  }

  /**
   * @internal Asks the backend to read up to `length` bytes into buf[offset...] for the parked
   * reader, in its next poll. Native only; a no-op elsewhere. The buffer is named to the addon
   * only when it changes: a reader that reuses one buffer asks with two stores.
   */
  askAhead(buf: Uint8Array, offset: number, length: number): void {
    const ahead = this.ahead;
    if (ahead === null || this.closed) return;
    if (buf !== this.aheadTarget) {
      ahead.setTarget(this.token, buf);
      this.aheadTarget = buf;
    }
    this.aheadOffset = offset;
    const wants = ahead.wants;
    wants[2 * this.token] = length;
    wants[2 * this.token + 1] = offset;
  }

  /** @internal Where in LANDING the backend put this poll's packed read for us. */
  packedAt(): number {
    return this.ahead!.wants[2 * this.token + 1]!;
  }

  /** @internal Withdraws an ask (the reader was settled, cancelled or failed). */
  dropAhead(): void {
    if (this.ahead !== null && !this.closed) this.ahead.wants[2 * this.token] = 0;
  }

  /** Bytes read ahead that no reader took: kept for the next reads. */
  private stash(from: Uint8Array, at: number, n: number): void {
    const old = this.stashed;
    const kept = new Uint8Array((old?.length ?? 0) + n);
    if (old !== null) kept.set(old);
    kept.set(from.subarray(at, at + n), kept.length - n);
    this.stashed = kept;
  }

  /**
   * A short read means the kernel buffer is drained: the next read waits for an edge rather than
   * spending a system call to hear EAGAIN. Not after a hang-up, though: the FIN (or error) came in
   * the same edge as the data, and no other edge will announce it.
   */
  private noteRead(n: number, asked: number): void {
    if (n === EAGAIN || (n > 0 && n < asked && !this.hungUp)) this.readable = false;
  }

  private unstash(buf: Uint8Array, offset: number, length: number): number {
    const kept = this.stashed!;
    const n = Math.min(length, kept.length);
    buf.set(kept.subarray(0, n), offset);
    this.stashed = n === kept.length ? null : kept.subarray(n);
    return n;
  }

  /** @internal One write attempt: bytes taken, or EAGAIN. */
  tryWrite(buf: Uint8Array, offset: number, length: number): number {
    if (!this.writable) return EAGAIN;
    // From the buffer last read into (an echo): named by its ArrayBuffer (see byte-io.ts).
    const reader = this.reader;
    const memory = reader.lastMemory;
    const n =
      buf === reader.lastBuf && memory !== null
        ? this.sockets.writeBuffer!(this.fd, memory, reader.lastAt + offset, length)
        : this.sockets.write(this.fd, buf, offset, length);
    if (n === EAGAIN || (n >= 0 && n < length)) this.writable = false;
    return n;
  }

  checkOpen(): void {
    if (this.closed) throw socketStateError('ERR_SOCKET_CLOSED', 'the socket is closed');
  }

  private readOp(buf: Uint8Array, offset: number, length: number, copy: boolean): ReadOp {
    this.checkOpen();
    this.reader.prepare(buf, offset, length, copy);
    return this.reader;
  }
}

/**
 * The peer's address, or an empty one when the peer already reset the connection (it can, while it
 * waits in the accept queue: getpeername then says ENOTCONN). Such a connection is not an error to
 * its acceptor; its first read reports what happened.
 */
export function peerOf(sockets: SocketApi, fd: number): { address: string; port: number } {
  try {
    const peer = sockets.remoteAddress(fd);
    // Most peers of a server share a handful of addresses: keep one copy of the string rather
    // than one per connection (10,000 connections from 127.0.0.1 held 10,000 equal strings).
    if (peer.address === lastPeerAddress) peer.address = lastPeerAddress;
    else lastPeerAddress = peer.address;
    return peer;
  } catch {
    return { address: '', port: 0 };
  }
}

let lastPeerAddress = '';

function closedError(): Error {
  return socketStateError('ERR_SOCKET_CLOSED', 'the socket was closed while a task was waiting on it');
}

function checkRange(buf: Uint8Array, offset: number, length: number, what: string): void {
  // The common case in a few instructions: both are integers from 0 to 2^32 - 1 (`>>> 0` leaves
  // exactly those unchanged) and the range fits.
  if (offset >>> 0 === offset && length >>> 0 === length && offset + length <= buf.length) return;
  if (!Number.isInteger(offset) || offset < 0 || offset > buf.length) throw new RangeError(`${what}(): offset ${offset} is outside the buffer`);
  if (!Number.isInteger(length) || length < 0 || offset + length > buf.length) throw new RangeError(`${what}(): length ${length} is outside the buffer`);
}

/**
 * A parked task waiting on one direction of a connection.
 *
 * A wait may have a time limit (a read's idle timeout). Its timer is lazy, as Node's own idle
 * timers are: armed once, not cancelled and re-added around every read (two calls into the
 * timer heap per message); when it fires it checks how long the current wait has really lasted,
 * and re-arms for the remainder or fails the wait.
 */
abstract class SocketOp<T> extends ReusableOp<T> implements TimerWaiter {
  protected task: Task<unknown> | null = null;
  private timer = -1;
  /** performance.now() when the current wait began. */
  private waitingSince = 0;

  constructor(protected readonly conn: Connection) {
    super();
  }

  /**
   * The first step of the `yield*`. When the call can complete now (a write the kernel takes, a
   * read with bytes waiting), it completes here and the `yield*` returns (or throws) without the
   * generator ever suspending: no trip through the driver's step loop. That path is taken only
   * inside the running task's own step, within its SOCKET_OPS_PER_STEP budget, and with no
   * cancel waiting: then the task could not tell it from yielding and being resumed at once.
   * Otherwise (or on EAGAIN) the op yields itself and the driver starts it as any instruction.
   */
  override next(value?: unknown): IteratorResult<unknown, T> {
    // `=== false` rather than `!`: the field is always a boolean, and V8 compiles `!` on it to a
    // full ToBoolean.
    if (this.yielded === false) {
      const task = runningTask();
      if (task !== null && task.socketBudget > 0 && task.interrupted === false) {
        const r = this.tryAttempt();
        if (r !== EAGAIN) {
          task.socketBudget--;
          this.iterating = false;
          const mode = this.outcome(r);
          const result = this.value;
          this.value = undefined;
          if (mode === THROW) throw result;
          return done(result as T);
        }
        // Nothing now: the task waits on this op from here, with no second attempt.
        this.yielded = true;
        return task.parkIn(this) as IteratorResult<unknown, T>;
      }
    } else if (this.landed > 0) {
      // Resumed: the task runs now, so the bytes a poll read ahead for it move into place.
      this.moveLanded();
    }
    return super.next(value);
  }

  /** Bytes a poll read ahead into LANDING for a read into sharedBuffer (ReadOp only). */
  protected landed = 0;
  protected moveLanded(): void {}

  override abort(): void {
    this.task = null;
    this.release();
  }

  /** Called on an edge: retry, and wake the task if there is an outcome. */
  ready(): void {
    const task = this.task;
    if (task === null) return;
    const r = this.tryAttempt();
    if (r === EAGAIN) return;
    this.task = null;
    this.settle(task, r);
  }

  fail(makeError: () => Error): void {
    const task = this.task;
    if (task === null) return;
    this.task = null;
    task.resume(THROW, makeError());
  }

  /** The time-limit timer fired: fail the wait if it has lasted that long, else wait on. */
  onTimer(): void {
    this.timer = -1;
    if (this.task === null) return;
    const limit = this.waitLimitMs();
    const left = this.waitingSince + limit - performance.now();
    // Within a millisecond is close enough: the timer's clock rounds to whole milliseconds.
    if (left > 1) this.timer = this.conn.loop.addTimer(left, this);
    else this.fail(() => socketStateError('ERR_IDLE_TIMEOUT', `no data received for ${limit} ms`));
  }

  /** The connection is closing: no timer may outlive it. */
  disarm(): void {
    if (this.timer >= 0) this.conn.loop.cancelTimer(this.timer);
    this.timer = -1;
  }

  start(task: Task<unknown>): boolean {
    // Retried a batch after the edge that woke it (Task.retry): the socket may be closed since,
    // and its fd number reused by another.
    if (this.conn.isClosed) {
      task.resumeMode = THROW;
      task.resumeValue = closedError();
      return true;
    }
    const r = this.tryAttempt();
    if (r === EAGAIN) {
      this.park(task);
      return false;
    }
    const mode = this.outcome(r);
    task.resumeMode = mode;
    task.resumeValue = this.value;
    task.socketBudget--;
    return true;
  }

  /** Waits for the next edge on behalf of `task`: an attempt just said EAGAIN. */
  park(task: Task<unknown>): void {
    this.task = task;
    const limit = this.waitLimitMs();
    if (limit > 0) {
      this.waitingSince = performance.now();
      if (this.timer < 0) this.timer = this.conn.loop.addTimer(limit, this);
    }
  }

  /** How long one wait may last before it fails (0: no limit). */
  protected waitLimitMs(): number {
    return 0;
  }

  /** Tries the system call; EAGAIN, or a result for `outcome`. */
  protected abstract attempt(): number;

  /**
   * attempt(), with anything it throws made the op's outcome (THREW, the error in `value`) rather
   * than thrown into whoever called: on an edge that is the loop's dispatch. The addon throws for
   * a buffer that is no longer there (detached or shrunk while the op waited).
   */
  private tryAttempt(): number {
    try {
      return this.attempt();
    } catch (err) {
      this.value = err;
      return THREW;
    }
  }
  /** Turns a result into the task's resume value (in `value`); returns the resume mode. */
  protected abstract outcome(r: number): typeof NEXT | typeof THROW;
  protected value: unknown = undefined;

  protected settle(task: Task<unknown>, r: number): void {
    const mode = this.outcome(r);
    const value = this.value;
    this.value = undefined;
    task.resume(mode, value);
  }
}

class ReadOp extends SocketOp<Uint8Array | null | number> {
  private buf: Uint8Array = EMPTY;
  private offset = 0;
  private length = 0;
  private copy = false;
  /**
   * Reading into `sharedBuffer`: bytes reach it only while the task runs, never while it waits
   * (another task may be using the buffer then). A poll reads ahead for such a reader into
   * LANDING (packed); the bytes wait there, `landed` of them at `landedAt`, and move into the
   * reader's buffer when the task resumes at its `yield*` (SocketOp.next), in the batch that
   * follows the poll: before the next poll reuses LANDING.
   */
  shared = false;
  /** The size of the last read into sharedBuffer (see BULK_READ). */
  private lastSharedRead = 0;
  private landedAt = 0;
  /** Where the landed bytes go (the read's buffer and offset; `buf` is cleared at settle). */
  private target: Uint8Array = EMPTY;
  private targetOffset = 0;
  /**
   * The last buffer read into and whether it is a view of sharedBuffer's memory: `.buffer` is a
   * call into V8's C++ (JSTypedArray::GetBuffer, 0.26% of the server's CPU at 8 in flight), and a
   * reader nearly always reads into the same buffer as last time. @internal
   */
  lastBuf: Uint8Array = EMPTY;
  private lastShared = false;
  /** @internal lastBuf's ArrayBuffer if the addon can be handed it (see byte-io.ts), and its offset. */
  lastMemory: ArrayBuffer | null = null;
  /** @internal */
  lastAt = 0;

  prepare(buf: Uint8Array, offset: number, length: number, copy: boolean): void {
    this.claim('read');
    if (buf !== this.lastBuf) {
      this.lastBuf = buf;
      const memory = buf.buffer;
      this.lastShared = memory === SHARED;
      this.lastMemory = nameable(this.conn.sockets, memory);
      this.lastAt = buf.byteOffset;
    }
    const shared = this.lastShared;
    // A view of the memory past sharedBuffer (LANDING) would let this read overwrite bytes
    // other readers have not taken yet.
    if (shared && buf.byteOffset + offset + length > SHARED_SIZE) {
      throw new RangeError('readInto(): a view of sharedBuffer\'s memory must lie within sharedBuffer');
    }
    this.buf = buf;
    this.offset = offset;
    this.length = length;
    this.copy = copy;
    this.shared = shared;
    this.landed = 0;
  }

  /**
   * The driver's attempt (not the optimistic one in `next`). With the step's budget of socket
   * calls spent, the driver would hand a completed read to its task only a batch later: a read
   * into sharedBuffer is then made at the start of the task's next step instead (Task.retry),
   * when the task goes on at once, before any other task can use the buffer.
   */
  override start(task: Task<unknown>): boolean {
    if (this.shared && task.socketBudget <= 1 && !this.conn.isClosed) {
      task.retry(this);
      return false;
    }
    return super.start(task);
  }

  override park(task: Task<unknown>): void {
    super.park(task);
    // The backend may read for us in its next poll (see takeAhead): into our own buffer, or,
    // for a buffer other connections share, packed into LANDING. Not for read(): its scratch is
    // copied out at once, and a poll reads for every reader before any of them runs.
    this.ask();
  }

  /** Asks the next poll to read for this op, where it may (see park). */
  private ask(): void {
    if (this.shared) {
      if (this.lastSharedRead < BULK_READ) this.conn.askAhead(LANDING, PACKED, Math.min(this.length, LANDING_SIZE));
    } else if (!this.copy) this.conn.askAhead(this.buf, this.offset, this.length);
  }

  /**
   * The backend's poll read for this op, into its buffer: `r` bytes, 0 at end of stream, or a
   * negative errno. False when no task was waiting for it.
   */
  takeAhead(r: number): boolean {
    const task = this.task;
    if (task === null) return false;
    if (r === EAGAIN) {
      this.ask();
      return true;
    }
    this.task = null;
    if (this.shared && r > 0) {
      // Into sharedBuffer when the task resumes (moveLanded), not now.
      this.landed = r;
      this.landedAt = this.conn.packedAt();
      this.target = this.buf;
      this.targetOffset = this.offset;
    }
    this.settle(task, r);
    return true;
  }

  override fail(makeError: () => Error): void {
    this.conn.dropAhead();
    super.fail(makeError);
  }

  /**
   * An edge with nothing read ahead for it (native): the task reads for itself when it runs, not
   * here. Here is the dispatch of a whole poll's events, before the batch runs any task. Bytes
   * read now would sit in the buffer until the task writes them on, a batch later, by when the
   * other readers' bytes have pushed them out of the cache: at 100 connections x 16 KiB that cost
   * about 2 us of server CPU per message (8.1 against 6.0-6.6 us).
   */
  wake(): void {
    const task = this.task;
    if (task === null) return;
    this.task = null;
    this.conn.dropAhead();
    task.retry(this);
  }

  override abort(): void {
    this.conn.dropAhead();
    super.abort();
  }

  /** See `shared`. The ask was at most `length` (and LANDING_SIZE), so the bytes fit. */
  protected override moveLanded(): void {
    const n = this.landed;
    this.landed = 0;
    const from = SHARED_SIZE + this.landedAt;
    WHOLE.copyWithin(this.target.byteOffset + this.targetOffset, from, from + n);
  }

  protected attempt(): number {
    return this.conn.tryRead(this.buf, this.offset, this.length);
  }

  protected override waitLimitMs(): number {
    return this.conn.idleTimeout;
  }

  protected outcome(r: number): typeof NEXT | typeof THROW {
    const buf = this.buf;
    this.buf = EMPTY;
    // Settled: an ask still out (the op was woken by a read of its own) is withdrawn.
    this.conn.dropAhead();
    if (r < 0) {
      if (r !== THREW) this.value = errnoError(r, 'read');
      return THROW;
    }
    if (this.shared) this.lastSharedRead = r;
    this.value = this.copy ? (r === 0 ? null : buf.slice(0, r)) : r;
    return NEXT;
  }
}

class WriteOp extends SocketOp<void> {
  private buf: Uint8Array = EMPTY;
  private offset = 0;
  private end = 0;

  prepare(buf: Uint8Array, offset: number, length: number): void {
    this.claim('write');
    this.buf = buf;
    this.offset = offset;
    this.end = offset + length;
  }

  /**
   * About to wait for the kernel: bytes still to send from `sharedBuffer` are copied first, as
   * its contract promises (another task may read into it while this one waits).
   */
  override park(task: Task<unknown>): void {
    if (this.buf.buffer === SHARED) {
      this.buf = this.buf.slice(this.offset, this.end);
      this.end -= this.offset;
      this.offset = 0;
    }
    super.park(task);
  }

  /** Writes until every byte is taken (returns 0) or the kernel is full (EAGAIN). */
  protected attempt(): number {
    while (this.offset < this.end) {
      const n = this.conn.tryWrite(this.buf, this.offset, this.end - this.offset);
      if (n < 0) return n;
      this.offset += n;
    }
    return 0;
  }

  protected outcome(r: number): typeof NEXT | typeof THROW {
    this.buf = EMPTY;
    if (r < 0) {
      if (r !== THREW) this.value = errnoError(r, 'write');
      return THROW;
    }
    this.value = undefined;
    return NEXT;
  }
}

/** Waits for a nonblocking connect to finish: the first writable (or error) edge. */
class ConnectOp extends SocketOp<void> {
  private waiting = false;
  private host = '';
  private port = 0;

  prepare(host: string, port: number): void {
    this.claim('connect');
    this.host = host;
    this.port = port;
    this.waiting = true;
  }

  protected attempt(): number {
    if (!this.waiting) return EAGAIN;
    const err = this.conn.sockets.socketError(this.conn.fd);
    // Still in progress (a HANGUP before the handshake ends would carry an error): keep waiting.
    if (err === 0 && !this.conn.writableNow()) return EAGAIN;
    this.waiting = false;
    return err;
  }

  protected outcome(r: number): typeof NEXT | typeof THROW {
    if (r !== THREW) this.value = r < 0 ? errnoError(r, 'connect', this.host, this.port) : undefined;
    return r < 0 ? THROW : NEXT;
  }
}

const EMPTY = new Uint8Array(0);
/** An attempt's result when it threw (SocketOp.tryAttempt): below every negative errno. */
const THREW = -0x7fffffff;

let scratch = new Uint8Array(DEFAULT_READ_SIZE);

