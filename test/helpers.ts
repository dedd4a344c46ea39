import type { BackendName } from '../src/index.js';

/**
 * Every driver test runs once per backend. The native one is not optional: if the addon failed to
 * build, its half of the suite fails rather than quietly testing only the JS backend.
 */
export const BACKENDS: readonly BackendName[] = (process.env.COLOOP_TEST_BACKENDS?.split(',') as BackendName[] | undefined) ?? [
  'js',
  'native',
];
