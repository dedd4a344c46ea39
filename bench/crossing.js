#!/usr/bin/env node
// Cost of one JS → native socket call: read() on an idle socket (EAGAIN) and a 64 B write+read
// pair on a loopback connection, in ns per call (median of 5 rounds of 300,000); the same with the
// buffer as an ArrayBuffer (readBuffer/writeBuffer), and through the argument block
// (readBlock/writeBlock), when the builds have them.
//
//   node bench/crossing.js                          this build (build/Release)
//   node bench/crossing.js --baseline OLD.node      and another build of the addon, rounds alternated
//
// The syscall itself is most of it (read(2) saying EAGAIN costs ~0.4 µs on this VM); what a change
// to the argument handling saves shows as the difference between two builds in the same run.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const builds = [['this build', require(path.join(root, 'build/Release/coloop.node'))]];
const i = process.argv.indexOf('--baseline');
if (i > 0) builds.unshift(['baseline', require(path.resolve(process.argv[i + 1]))]);

const api = builds[builds.length - 1][1];
const lfd = api.listen('127.0.0.1', 0, 16, false);
const cfd = api.connect('127.0.0.1', api.localAddress(lfd).port);
await new Promise((r) => setTimeout(r, 50));
const sfd = api.accept(lfd);
const buf = new Uint8Array(65536);
const msg = new Uint8Array(64);

const N = 300_000;
function time(m, f) {
  for (let k = 0; k < 20_000; k++) f(m);
  const t = process.hrtime.bigint();
  for (let k = 0; k < N; k++) f(m);
  return Number(process.hrtime.bigint() - t) / N;
}
const memory = buf.buffer;
const msgMemory = msg.buffer;
// The same calls with the bytes named by their ArrayBuffer: four arguments (readBuffer/writeBuffer),
// and through the argument block (readBlock/writeBlock: fd, offset and length in ioBlock, the
// result left in its slot 3), as the native backend makes them. A build without them skips them.
const viaBlock = (name) => (m, fd, mem, offset, length) => {
  const block = m.ioBlock;
  block[0] = fd;
  block[1] = offset;
  block[2] = length;
  m[name](mem);
  return block[3];
};
const blockRead = viaBlock('readBlock');
const blockWrite = viaBlock('writeBlock');
const cases = {
  'read (EAGAIN)': (m) => m.read(sfd, buf, 0, buf.length),
  'write 64 B + read': (m) => { m.write(cfd, msg, 0, 64); m.read(sfd, buf, 0, buf.length); },
};
const allHave = (name) => builds.every(([, m]) => typeof m[name] === 'function');
if (allHave('readBuffer')) {
  cases['readBuffer (EAGAIN)'] = (m) => m.readBuffer(sfd, memory, 0, memory.byteLength);
  cases['writeBuffer + readBuffer'] = (m) => { m.writeBuffer(cfd, msgMemory, 0, 64); m.readBuffer(sfd, memory, 0, memory.byteLength); };
}
if (allHave('readBlock')) {
  cases['readBlock (EAGAIN)'] = (m) => blockRead(m, sfd, memory, 0, memory.byteLength);
  cases['writeBlock + readBlock'] = (m) => { blockWrite(m, cfd, msgMemory, 0, 64); blockRead(m, sfd, memory, 0, memory.byteLength); };
}
const results = {};
for (let round = 0; round < 5; round++) {
  for (const [name, f] of Object.entries(cases)) {
    for (const [label, m] of round % 2 ? [...builds].reverse() : builds) ((results[name] ??= {})[label] ??= []).push(time(m, f));
  }
}
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
for (const [name, byBuild] of Object.entries(results)) {
  const cells = Object.entries(byBuild).map(([label, t]) => `${label} ${median(t).toFixed(0)} ns`);
  const ratio = builds.length > 1 ? `  (this/baseline ${(median(byBuild['this build']) / median(byBuild.baseline)).toFixed(3)})` : '';
  console.log(`${name.padEnd(18)} ${cells.join('  ')}${ratio}`);
}
for (const fd of [sfd, cfd, lfd]) api.close(fd);
