import { errnoError } from '../errors.js';
import type { NativeBinding, NativePoller } from '../native.js';
import type { Backend, SocketApi } from './backend.js';

/** The native backend: epoll (Linux) or kqueue (macOS/BSD) and a C++ timer heap. */
export class NativeBackend implements Backend {
  readonly name = 'native' as const;
  readonly events: Int32Array;
  readonly expired: Int32Array;
  readonly poller: NativePoller;
  readonly sockets: SocketApi;

  constructor(binding: NativeBinding, onWake: () => void) {
    this.poller = new binding.Poller(onWake);
    this.sockets = binding;
    this.events = this.poller.events;
    this.expired = this.poller.timers;
  }

  register(fd: number, token: number): void {
    this.poller.add(fd, token);
  }

  unregister(fd: number): void {
    this.poller.remove(fd);
  }

  now(): number {
    return this.poller.now();
  }

  addTimer(delayMs: number): number {
    return this.poller.addTimer(delayMs);
  }

  cancelTimer(id: number): boolean {
    return this.poller.cancelTimer(id);
  }

  poll(): number {
    const n = this.poller.wait(0);
    if (n < 0) throw errnoError(n, 'epoll_wait');
    return n;
  }

  arm(): void {
    // The poller re-arms its uv_timer itself, after every wait and every earlier addTimer.
  }

  close(): void {
    this.poller.close();
  }
}
