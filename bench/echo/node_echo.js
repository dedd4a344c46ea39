#!/usr/bin/env node
// node:net echo servers for coloop's load benchmarks.
//   node bench/echo/node_echo.js --port 0 [--host 127.0.0.1] [--mode pipe|data]
// pipe: socket.pipe(socket) (stream backpressure). data: on('data') -> write, pausing the socket
// while write() reports a full buffer. Prints "listening on HOST:PORT (...)"; exits 0 on SIGTERM.
import net from 'node:net';

const args = process.argv.slice(2);
let host = '127.0.0.1';
let port = 0;
let mode = 'pipe';
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--host') host = args[++i];
  else if (args[i] === '--port') port = Number(args[++i]);
  else if (args[i] === '--mode') mode = args[++i];
  else {
    console.error(`node_echo: unknown argument ${args[i]}`);
    process.exit(2);
  }
}
if (mode !== 'pipe' && mode !== 'data') {
  console.error(`node_echo: --mode must be pipe or data, not ${mode}`);
  process.exit(2);
}

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.on('error', () => socket.destroy());
  if (mode === 'pipe') {
    socket.pipe(socket);
  } else {
    socket.on('data', (chunk) => {
      if (!socket.write(chunk)) {
        socket.pause();
        socket.once('drain', () => socket.resume());
      }
    });
    socket.on('end', () => socket.end());
  }
});
server.listen({ host, port, backlog: 4096 }, () => {
  const a = server.address();
  process.stdout.write(`listening on ${a.address}:${a.port} (node:net ${mode})\n`);
});
const stop = () => {
  server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
