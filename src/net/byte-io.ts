import type { SocketApi } from '../backend/backend.js';

/**
 * A reader that names its buffer to the addon as an ArrayBuffer and an absolute offset
 * (`readBuffer`), where the sockets have that form: handing the addon a Uint8Array costs it ~250
 * user-space instructions a call in Node-API's napi_get_typedarray_info (it tests the array's
 * kind one kind at a time and materializes its buffer handle), an ArrayBuffer ~70 (callgrind,
 * through bench/instructions.js). A view's `.buffer` is itself a call into V8 that costs about
 * what this saves, so the last view's ArrayBuffer is kept: a reader that reuses its buffer, as
 * a transport does (getBuffer's, or the shared one), looks it up once.
 *
 * Reads only: a writer's buffers are often used once (a response), and kept here they would stay
 * alive as long as the connection. A view over a SharedArrayBuffer reads the Uint8Array way.
 */
export class BufferReader {
  private view: Uint8Array | null = null;
  /** The view's ArrayBuffer, or null: a SharedArrayBuffer, or sockets without readBuffer. */
  private memory: ArrayBuffer | null = null;
  private at = 0;

  constructor(private readonly sockets: SocketApi) {}

  read(fd: number, buf: Uint8Array, offset: number, length: number): number {
    if (buf !== this.view) this.see(buf);
    const memory = this.memory;
    return memory !== null ? this.sockets.readBuffer!(fd, memory, this.at + offset, length) : this.sockets.read(fd, buf, offset, length);
  }

  /** Lets go of the last buffer. */
  forget(): void {
    this.view = null;
    this.memory = null;
  }

  private see(buf: Uint8Array): void {
    this.view = buf;
    const memory = buf.buffer;
    this.memory = this.sockets.readBuffer !== undefined && memory instanceof ArrayBuffer ? memory : null;
    this.at = buf.byteOffset;
  }
}
