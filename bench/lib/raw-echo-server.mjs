// A minimal echo server on the raw addon (Poller + socket calls), in one of two wake modes:
//   uv:       libuv watches the poller fd; onWake runs a nonblocking wait(0) (coloop's mode);
//   blocking: a JS loop around a blocking wait(-1) — Node's own loop never runs meanwhile.
// It measures what the wake path costs, with no driver above it. Prints "listening PORT".
// Usage: node raw-echo-server.mjs uv|blocking
import { loadNative } from '../../dist/native.js';

const mode = process.argv[2];
const native = loadNative();
const EAGAIN = -11;
const buf = new Uint8Array(65536);
const listener = native.listen('127.0.0.1', 0, 511, false);
const fds = [listener];
let poller;

function dispatch(n) {
  const events = poller.events;
  for (let i = 0; i < n; i++) {
    const fd = fds[events[2 * i]];
    if (fd === listener) {
      for (;;) {
        const c = native.accept(listener);
        if (c < 0) break;
        fds[c] = c;
        poller.add(c, c);
      }
      continue;
    }
    for (;;) {
      const r = native.read(fd, buf, 0, buf.length);
      if (r === EAGAIN) break;
      if (r <= 0) {
        poller.remove(fd);
        native.close(fd);
        break;
      }
      // Small echoes: the kernel takes them whole; a partial write ends the benchmark loudly.
      if (native.write(fd, buf, 0, r) !== r) throw new Error('short write');
      if (r < buf.length) break;
    }
  }
}

poller = new native.Poller(() => dispatch(poller.wait(0)));
fds[0] = listener;
poller.add(listener, 0);
console.log(`listening ${native.localAddress(listener).port}`);
process.on('SIGTERM', () => process.exit(0));
if (mode === 'blocking') {
  // Never returns to Node: SIGTERM's default action ends it.
  process.removeAllListeners('SIGTERM');
  for (;;) dispatch(poller.wait(-1));
}
