import { performance } from 'node:perf_hooks';
import { errnoError } from '../errors.js';
import type { NativeBinding, NativePoller } from '../native.js';
import { BackendTimers } from '../timers.js';
import { NOT_READ, type Backend, type ReadAhead, type SocketApi } from './backend.js';

/**
 * Bytes one poll reads ahead at most (see ReadAhead). Readers past it read when their task runs,
 * just before it writes the bytes on, while they are still in the cache.
 */
const READ_AHEAD_BUDGET = 128 * 1024;

/**
 * The binding's socket calls, with read/write and readBuffer/writeBuffer made through its argument
 * block when it has one (see NativeBinding.ioBlock): one function serves both forms of each, as the
 * addon's readBlock takes an ArrayBuffer or a Uint8Array. A call with four arguments cost ~700
 * user-space instructions in all with an ArrayBuffer (bench/breakdown.js), ~240 of them fetching
 * three numbers and making one; through the block, ~400. `bench/instructions.js --server --dist
 * BEFORE/dist --dist AFTER/dist` (copies of whole builds, each on its own addon), one run: serve
 * 2,990 -> 2,711 instructions per message, Protocol (two such calls a message) 2,121 -> 1,658.
 */
function withIoBlock(binding: NativeBinding): SocketApi {
  const { ioBlock: block, readBlock, writeBlock } = binding;
  if (block === undefined || readBlock === undefined || writeBlock === undefined) return binding;
  // Two functions written out rather than made by one factory: each call site into the addon
  // then sees one target (a shared closure's call would see both).
  const read = (fd: number, bytes: ArrayBuffer | Uint8Array, offset: number, length: number): number => {
    block[0] = fd;
    block[1] = offset;
    block[2] = length;
    readBlock(bytes);
    return block[3]!;
  };
  const write = (fd: number, bytes: ArrayBuffer | Uint8Array, offset: number, length: number): number => {
    block[0] = fd;
    block[1] = offset;
    block[2] = length;
    writeBlock(bytes);
    return block[3]!;
  };
  return { ...binding, read, write, readBuffer: read, writeBuffer: write };
}

/**
 * The native backend: epoll (Linux) or kqueue (macOS/BSD) for readiness.
 *
 * Timers live in the JS heap (src/timers.ts), and the poller's C++ heap holds just one timer: the
 * earliest JS deadline, which bounds the wait and wakes the loop from Node's. Every sleep or
 * cancel in the C++ heap cost a crossing into the addon; measured with bench/micro.js, sleep(0)
 * ran 2.7× faster on the pure-JS backend for that reason alone, and a cancel-heavy mix was 0.8×
 * the JS heap's speed. Now a timer costs a crossing only when it changes the earliest deadline at
 * the end of a tick.
 */
export class NativeBackend implements Backend {
  readonly name = 'native' as const;
  readonly events: Int32Array;
  private readonly timers = new BackendTimers();
  readonly expired = this.timers.expired;
  readonly poller: NativePoller;
  readonly sockets: SocketApi;
  readonly readAhead: ReadAhead;
  private registered = 0;
  /** The poller's one timer (-1: none) and the JS deadline it stands for. */
  private armedId = -1;
  private armedFor = Infinity;

  constructor(binding: NativeBinding, onWake: () => void) {
    this.poller = new binding.Poller(onWake);
    this.sockets = withIoBlock(binding);
    this.events = this.poller.events;
    const arrays = this.poller.enableReadAhead(1, READ_AHEAD_BUDGET);
    if (arrays.notRead !== NOT_READ) throw new Error(`coloop: the addon's read-ahead marker is ${arrays.notRead}, not ${NOT_READ}: rebuild it`);
    const poller = this.poller;
    this.readAhead = {
      wants: arrays.wants,
      results: arrays.results,
      setTarget: (token, buf) => poller.setReadTarget(token, buf),
    };
  }

  register(fd: number, token: number): void {
    // Two slots a token (see ReadAhead).
    if (2 * token >= this.readAhead.wants.length) this.readAhead.wants = this.poller.enableReadAhead(token + 1).wants;
    this.poller.add(fd, token);
    this.registered++;
  }

  unregister(fd: number): void {
    this.registered--;
    this.poller.remove(fd);
  }

  now(): number {
    return this.timers.now();
  }

  addTimer(delayMs: number): number {
    return this.timers.add(delayMs);
  }

  cancelTimer(id: number): boolean {
    return this.timers.cancel(id);
  }

  poll(): number {
    // The clock only when a timer is pending, here or in the poller: a busy server with none
    // polls without a clock read (performance.now() is ~200 user-space instructions).
    const timed = this.armedId >= 0 || this.timers.pending;
    const now = timed ? performance.now() : 0;
    if (timed) this.timers.collect(now);
    else this.timers.expired[0] = 0;
    // The crossing is needed for readiness, or to collect the poller's timer once it is due (it is
    // the only one the C++ heap holds); with neither, there is nothing to ask the kernel.
    if (this.registered === 0 && !(this.armedId >= 0 && now >= this.armedFor)) return 0;
    const n = this.poller.wait(0);
    if (this.poller.timers[0]! > 0) {
      this.armedId = -1;
      this.armedFor = Infinity;
    }
    if (n < 0) throw errnoError(n, 'epoll_wait');
    return n;
  }

  arm(): void {
    const next = this.timers.earliest();
    if (next < 0) {
      // A cancelled sleep must not keep the process alive.
      if (this.armedId >= 0) this.poller.cancelTimer(this.armedId);
      this.armedId = -1;
      this.armedFor = Infinity;
      return;
    }
    // Already set to wake at or before the earliest deadline (a too-early wake just re-arms).
    if (this.armedId >= 0 && this.armedFor <= next) return;
    if (this.armedId >= 0) this.poller.cancelTimer(this.armedId);
    this.armedId = this.poller.addTimer(Math.max(0, next - performance.now()));
    this.armedFor = next;
  }

  close(): void {
    this.poller.close();
  }
}
