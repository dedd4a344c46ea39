// Is a dedicated blocking mode worth having? Compares two ways of waking the same raw echo server
// (bench/lib/raw-echo-server.mjs): from Node's loop via uv_poll (what coloop does), and a JS loop
// around a blocking epoll_wait. Server and client pinned to different cores when taskset exists;
// modes alternated over rounds. Usage: node bench/wake-mode.js [--quick]
import { execFileSync, spawn } from 'node:child_process';
import { machine, save } from './harness.js';

const quick = process.argv.includes('--quick');
const seconds = quick ? 1 : 3;
const roundsCount = quick ? 2 : 5;
const hasTaskset = (() => {
  try {
    execFileSync('taskset', ['-c', '0', 'true']);
    return true;
  } catch {
    return false;
  }
})();
const pinned = (core, args) => (hasTaskset ? ['taskset', ['-c', String(core), ...args]] : [args[0], args.slice(1)]);
const here = new URL('./lib/', import.meta.url).pathname;

async function once(mode, conns) {
  const [cmd, args] = pinned(0, [process.execPath, `${here}raw-echo-server.mjs`, mode]);
  const server = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise((resolve, reject) => {
      server.once('exit', (code) => reject(new Error(`server exited ${code}`)));
      server.stdout.once('data', (d) => resolve(Number(d.toString().trim().split(' ')[1])));
    });
    const [ccmd, cargs] = pinned(1, [process.execPath, `${here}pingpong-client.mjs`, String(port), String(conns), '64', String(seconds)]);
    const out = execFileSync(ccmd, cargs, { encoding: 'utf8', timeout: (seconds + 20) * 1000 });
    return JSON.parse(out).tripsPerSec;
  } finally {
    server.kill('SIGKILL');
  }
}

const rows = [];
let md = `# Wake mode: uv_poll inside Node's loop vs a blocking epoll_wait loop\n\n\`node bench/wake-mode.js\` on ${machine().cpu}, Node ${process.version}, commit ${machine().commit}; taskset: ${hasTaskset}.\n`;
md += `64-byte ping-pong from a node:net client, ${seconds} s per run, median of ${roundsCount} alternated rounds.\n\n| connections | uv_poll (round trips/s) | blocking (round trips/s) | blocking / uv_poll |\n|---:|---:|---:|---:|\n`;
for (const conns of [1, 100]) {
  const samples = { uv: [], blocking: [] };
  for (let r = 0; r < roundsCount; r++) for (const mode of ['uv', 'blocking']) samples[mode].push(await once(mode, conns));
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const uv = median(samples.uv);
  const blocking = median(samples.blocking);
  rows.push({ conns, uv, blocking, samples });
  md += `| ${conns} | ${Math.round(uv)} | ${Math.round(blocking)} | ${(blocking / uv).toFixed(3)} |\n`;
}
console.log(md);
if (!quick) console.log(`saved ${save('wake-mode', { machine: machine(), rows }, md).md}`);
