// A node:net ping-pong client for the wake-mode benchmark: CONNS connections, each sends SIZE
// bytes and waits for the echo, for SECONDS. Prints round trips per second as JSON.
// Usage: node pingpong-client.mjs PORT CONNS SIZE SECONDS
import net from 'node:net';

const [port, conns, size, seconds] = process.argv.slice(2).map(Number);
const payload = Buffer.alloc(size, 7);
let trips = 0;
let stop = false;
const sockets = await Promise.all(
  Array.from({ length: conns }, () => new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, noDelay: true }, () => resolve(s));
    s.on('error', reject);
  })),
);
const t0 = process.hrtime.bigint();
for (const s of sockets) {
  let got = 0;
  s.on('data', (d) => {
    got += d.length;
    if (got < size) return;
    got -= size;
    trips++;
    if (!stop) s.write(payload);
  });
  s.write(payload);
}
await new Promise((r) => setTimeout(r, seconds * 1000));
stop = true;
const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
for (const s of sockets) s.destroy();
console.log(JSON.stringify({ tripsPerSec: trips / elapsed }));
