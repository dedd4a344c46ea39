// bench/echo/build/load_epoll (the C load client), built as the echo suite builds it when it is
// missing or older than its source.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const bench = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

export function buildLoadClient() {
  const bin = path.join(bench, 'echo/build/load_epoll');
  const src = path.join(bench, 'echo/c/load_epoll.c');
  if (existsSync(bin) && statSync(bin).mtimeMs >= statSync(src).mtimeMs) return bin;
  mkdirSync(path.dirname(bin), { recursive: true });
  const r = spawnSync(process.env.CC || 'cc', ['-O2', '-Wall', '-o', bin, src], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building load_epoll failed: ${r.stderr}`);
  return bin;
}
