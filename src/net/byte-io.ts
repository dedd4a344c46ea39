import type { SocketApi } from '../backend/backend.js';

/**
 * The buffer a connection last read into, known by its ArrayBuffer: reads into it, and writes from
 * it (an echo, a proxy: what was read goes back out), name it to the addon as an ArrayBuffer and an
 * absolute offset (`readBuffer`/`writeBuffer`) where the sockets have those calls.
 *
 * Handing the addon a Uint8Array costs it ~250 user-space instructions a call in Node-API's
 * napi_get_typedarray_info (it tests the array's kind one kind at a time and materializes its
 * buffer handle), an ArrayBuffer ~70 (callgrind, through bench/instructions.js). A view's `.buffer`
 * is itself a call into V8 that costs about what this saves, so it is looked up once per buffer.
 *
 * Only the buffer read into is known: a reader reuses its buffer, and holds it anyway; a writer's
 * buffers are often used once (a response), and kept here they would live as long as the
 * connection. Other writes, and views over a SharedArrayBuffer, go the Uint8Array way.
 */
export class KnownBuffer {
  private view: Uint8Array | null = null;
  /** The view's ArrayBuffer, or null: a SharedArrayBuffer, or sockets without these calls. */
  private memory: ArrayBuffer | null = null;
  private at = 0;

  constructor(private readonly sockets: SocketApi) {}

  /** Reads into `buf`, which becomes the known buffer. */
  read(fd: number, buf: Uint8Array, offset: number, length: number): number {
    if (buf !== this.view) this.know(buf);
    const memory = this.memory;
    return memory !== null ? this.sockets.readBuffer!(fd, memory, this.at + offset, length) : this.sockets.read(fd, buf, offset, length);
  }

  /** Writes from `buf`: by its ArrayBuffer if it is the known buffer. */
  write(fd: number, buf: Uint8Array, offset: number, length: number): number {
    const memory = this.memory;
    return buf === this.view && memory !== null
      ? this.sockets.writeBuffer!(fd, memory, this.at + offset, length)
      : this.sockets.write(fd, buf, offset, length);
  }

  /**
   * `buf` is what the connection reads into now (some of its reads are made elsewhere: read-ahead).
   * Returns `buf.buffer`, which the caller may want too.
   */
  know(buf: Uint8Array): ArrayBufferLike {
    this.view = buf;
    const memory = buf.buffer;
    const sockets = this.sockets;
    this.memory = sockets.readBuffer !== undefined && sockets.writeBuffer !== undefined && memory instanceof ArrayBuffer ? memory : null;
    this.at = buf.byteOffset;
    return memory;
  }

  /** Lets go of the buffer. */
  forget(): void {
    this.view = null;
    this.memory = null;
  }
}
