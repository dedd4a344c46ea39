import type { SocketApi } from '../backend/backend.js';

/** The longest buffer the bound calls take: their offsets and lengths travel as int32. */
const MAX_BOUND_LENGTH = 0x7fffffff;

/**
 * One descriptor's reads and writes, through the bound calls (`SocketApi.bindBuffer`) where they
 * pay. A buffer is bound the second time in a row a side is called with it: a connection that
 * reuses its buffer (an echo, a proxy, a protocol's `getBuffer`) binds it once, and from then on
 * each call costs about half a plain one (native: ~480 user-space instructions against ~940, see
 * native/js_bound_io.cc). One that writes a fresh buffer every time keeps the plain calls and
 * never pays for binding.
 */
export class DescriptorIo {
  private readonly args: Int32Array;
  private fd: number;
  private boundRead: Uint8Array | null = null;
  private lastRead: Uint8Array | null = null;
  private boundWrite: Uint8Array | null = null;
  private lastWrite: Uint8Array | null = null;

  constructor(
    private readonly sockets: SocketApi,
    fd: number,
  ) {
    this.fd = fd;
    this.args = sockets.ioArgs;
  }

  /** As `SocketApi.read`. */
  read(buf: Uint8Array, offset: number, length: number): number {
    if (buf !== this.boundRead) {
      if (buf !== this.lastRead || !this.bind(0, buf)) {
        this.lastRead = buf;
        return this.sockets.read(this.fd, buf, offset, length);
      }
      this.boundRead = buf;
    }
    const args = this.args;
    args[0] = this.fd;
    args[1] = offset;
    args[2] = length;
    this.sockets.readBound();
    return args[3]!;
  }

  /** As `SocketApi.write`. */
  write(buf: Uint8Array, offset: number, length: number): number {
    if (buf !== this.boundWrite) {
      if (buf !== this.lastWrite || !this.bind(1, buf)) {
        this.lastWrite = buf;
        return this.sockets.write(this.fd, buf, offset, length);
      }
      this.boundWrite = buf;
    }
    const args = this.args;
    args[0] = this.fd;
    args[1] = offset;
    args[2] = length;
    this.sockets.writeBound();
    return args[3]!;
  }

  /**
   * The descriptor was closed (its bindings went with it): from here every call fails, rather than
   * reach whichever socket is given the number next.
   */
  closed(): void {
    this.fd = -1;
    this.boundRead = this.lastRead = this.boundWrite = this.lastWrite = null;
  }

  private bind(side: 0 | 1, buf: Uint8Array): boolean {
    if (this.fd < 0 || buf.length > MAX_BOUND_LENGTH || !(buf.buffer instanceof ArrayBuffer)) return false;
    this.sockets.bindBuffer(this.fd, side, buf);
    return true;
  }
}
