import type { SocketApi } from '../backend/backend.js';

/*
 * The buffer a connection last read into, known by its ArrayBuffer: reads into it, and writes from
 * it (an echo, a proxy: what was read goes back out), name it to the addon as an ArrayBuffer and
 * an absolute offset (`readBuffer`/`writeBuffer`) where the sockets have those calls. The owner
 * (ReadOp for a Connection, Transport) keeps the view, its ArrayBuffer and offset in fields of its
 * own: an object for them cost 56 B per connection at C10k (heap snapshot, bench/memory.js).
 *
 * Handing the addon a Uint8Array costs it ~250 user-space instructions a call in Node-API's
 * napi_get_typedarray_info (it tests the array's kind one kind at a time and materializes its
 * buffer handle), an ArrayBuffer ~70 (callgrind, through bench/instructions.js). A view's `.buffer`
 * is itself a call into V8 that costs about what this saves, so it is looked up once per buffer.
 *
 * Only the buffer read into is known: a reader reuses its buffer, and holds it anyway; a writer's
 * buffers are often used once (a response), and kept they would live as long as the connection.
 * Other writes, and views over a SharedArrayBuffer, go the Uint8Array way.
 */

/** `memory` (a view's `.buffer`) if the addon's ArrayBuffer calls can name it, else null. */
export function nameable(sockets: SocketApi, memory: ArrayBufferLike): ArrayBuffer | null {
  return sockets.readBuffer !== undefined && sockets.writeBuffer !== undefined && memory instanceof ArrayBuffer ? memory : null;
}
