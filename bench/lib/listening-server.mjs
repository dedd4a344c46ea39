// A server process started for a measurement (often under valgrind), and the port it prints once
// listening ("listening on HOST:PORT"): shared by bench/instructions.js and bench/breakdown.js.
import { spawn } from 'node:child_process';

/**
 * Starts `cmd argv`; resolves with { server, port, stderr(), exited } once it prints its port,
 * rejects if it exits first or stays silent for `timeoutMs`.
 */
export async function startListening(cmd, argv, { env = process.env, timeoutMs = 60_000 } = {}) {
  const server = spawn(cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  server.stdout.on('data', (d) => (out += d));
  server.stderr.on('data', (d) => (err += d));
  const exited = new Promise((resolve) => server.on('exit', resolve));
  try {
    const port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the server did not listen within ${timeoutMs / 1000} s: ${err.slice(-300)}`)), timeoutMs);
      server.stdout.on('data', () => {
        const m = /listening on [^\s]+:(\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      server.on('exit', () => {
        clearTimeout(timer);
        reject(new Error(`the server exited: ${err.slice(-300)}`));
      });
    });
    return { server, port, stderr: () => err, exited };
  } catch (e) {
    if (server.exitCode === null) server.kill('SIGKILL');
    throw e;
  }
}
