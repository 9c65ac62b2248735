import type { Suite } from './suite.js';

/** Every suite `npm run bench` runs, in order. Add a suite here to have it run and reported. */
export const SUITES: Suite[] = [];
