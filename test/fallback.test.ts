import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

describe('without the native addon', () => {
  it('runs on the pure-JS backend and warns exactly once, naming the reason', () => {
    // A copy of the built package with no build/ directory: the addon cannot load.
    const root = mkdtempSync(join(tmpdir(), 'coloop-noaddon-'));
    try {
      const repo = new URL('..', import.meta.url).pathname;
      cpSync(join(repo, 'dist'), join(root, 'dist'), { recursive: true });
      cpSync(join(repo, 'package.json'), join(root, 'package.json'));
      symlinkSync(join(repo, 'node_modules'), join(root, 'node_modules'), 'dir');
      const script = `
        import { run, sleep, Loop } from ${JSON.stringify(join(root, 'dist', 'index.js'))};
        const a = await run(function* () { yield* sleep(1); return 'a'; });
        const b = await run(function* () { yield* sleep(1); return 'b'; });
        const loop = new Loop();
        console.log(a + b + ' ' + loop.backend.name);
        await loop.close();
        try { new Loop({ backend: 'native' }); } catch (err) { console.log('explicit: ' + err.message); }
      `;
      const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
      expect(child.status).toBe(0);
      const lines = child.stdout.trim().split('\n');
      expect(lines[0]).toBe('ab js');
      expect(lines[1]).toMatch(/^explicit: the coloop native addon could not be loaded/);
      const warnings = child.stderr.split('\n').filter((l) => l.includes('coloop: native addon unavailable'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/pure-JS backend \(.+\)/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
