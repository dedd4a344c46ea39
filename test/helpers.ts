import type { BackendName } from '../src/index.js';

/**
 * Every driver test runs once per backend. The native one is not optional: if the addon failed to
 * build, its half of the suite fails rather than quietly testing only the JS backend.
 */
export const BACKENDS: readonly BackendName[] = (process.env.COLOOP_TEST_BACKENDS?.split(',') as BackendName[] | undefined) ?? [
  'js',
  'native',
];

/**
 * The built package, for scripts run in child processes (Node 20 cannot import .ts). `npm test`
 * builds first (the pretest script), so this is the code under test, not a stale copy.
 */
export const DIST_ENTRY = new URL('../dist/index.js', import.meta.url).pathname;
