// Another build of coloop to compare against (bench/echo/suite.js --baseline, bench/instructions.js
// --dist): its dist/ and the addon it runs with.
import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * The addon a build's `dist` runs with: its own when a build/Release/coloop.node lies beside that
 * dist/ (a copy of a whole build: `cp -r dist build package.json /tmp/a/`), so that changes to the
 * addon are compared too; else `fallback` (this checkout's: the driver alone is compared).
 */
export function addonFor(dist, fallback) {
  const own = path.join(path.resolve(dist), '../build/Release/coloop.node');
  return existsSync(own) ? own : fallback;
}
