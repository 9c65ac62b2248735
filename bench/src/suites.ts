import { artifactsSuite } from './artifacts.js';
import { replayLargeSuite, replaySuite } from './replay.js';
import { storeSuite } from './store-logging.js';
import { storeRunsSuite } from './store-runs.js';
import type { Suite } from './suite.js';

/** Every suite `npm run bench` runs, in order. Add a suite here to have it run and reported. */
export const SUITES: Suite[] = [
  storeSuite,
  storeRunsSuite,
  replaySuite,
  replayLargeSuite,
  artifactsSuite,
];
