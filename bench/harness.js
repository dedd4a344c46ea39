// Side-by-side measurement: every variant of a case runs once per round, rounds alternate the
// variants (A B C, A B C, ...), and the median of the rounds is reported with its min and max.
// Ratios are taken between medians of the same run, never against numbers from another run.
import { execSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';

export async function measure(variants, { rounds = 7, warmup = 2 } = {}) {
  const samples = variants.map(() => []);
  for (let r = 0; r < warmup + rounds; r++) {
    for (let i = 0; i < variants.length; i++) {
      const { ops, fn } = variants[i];
      const t0 = process.hrtime.bigint();
      await fn();
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (r >= warmup) samples[i].push(ops / seconds);
    }
  }
  return variants.map((v, i) => {
    const s = samples[i].sort((a, b) => a - b);
    return { name: v.name, median: s[s.length >> 1], min: s[0], max: s[s.length - 1] };
  });
}

export function machine() {
  let commit = 'unknown';
  try {
    commit = execSync('git rev-parse --short HEAD', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {}
  return { node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown', commit, date: new Date().toISOString() };
}

export function formatRate(x) {
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)} M/s`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)} k/s`;
  return `${x.toFixed(1)} /s`;
}

/** Writes `<name>-<date>.json` and `<name>.md` (latest) under bench/results. */
export function save(name, data, markdown) {
  const dir = new URL('./results/', import.meta.url).pathname;
  mkdirSync(dir, { recursive: true });
  const day = new Date().toISOString().slice(0, 10);
  writeFileSync(`${dir}${name}-${day}.json`, JSON.stringify(data, null, 2) + '\n');
  writeFileSync(`${dir}${name}.md`, markdown);
  return { json: `bench/results/${name}-${day}.json`, md: `bench/results/${name}.md` };
}
