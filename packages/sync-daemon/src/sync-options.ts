import { ValidationError } from '@tidemark/core';
import { MAX_OPS_PER_REQUEST } from './request-batches.js';
import type { SyncLimits, SyncOptions } from './sync-once.js';

export const DEFAULT_LIMITS: SyncLimits = {
  maxEntries: 2_000,
  maxPoints: 50_000,
  maxRequestBytes: 16 * 1024 * 1024,
};
const KNOWN_OPTIONS = new Set([
  'remote',
  'only',
  'limits',
  'uploadConcurrency',
  'logger',
  'onProgress',
  'clock',
  'signal',
  'release',
  'resend',
]);

/** Refuses an options object syncOnce cannot honour, naming the option. */
export function validateOptions(options: SyncOptions): void {
  if (typeof options !== 'object' || options === null) {
    throw invalidOption(
      'syncOnce takes an options object',
      'Call syncOnce(store, remote, { only }).',
    );
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) {
      throw invalidOption(
        `syncOnce has no option '${key}'`,
        `Known options: ${[...KNOWN_OPTIONS].join(', ')}.`,
      );
    }
  }

  if (
    options.only !== undefined &&
    (typeof options.only !== 'string' || options.only.length === 0)
  ) {
    throw invalidOption(
      'only must be a project name',
      "Pass only: 'team/project', or leave it out.",
    );
  }
  const release = options.release;
  if (
    release !== undefined &&
    release !== 'all' &&
    !(Array.isArray(release) && release.every((id) => typeof id === 'string' && id.length > 0))
  ) {
    throw invalidOption(
      "release must be 'all' or a list of run ids",
      "Pass release: 'all' or release: ['<run id>'].",
    );
  }
  const resend = options.resend;
  if (
    resend !== undefined &&
    !(Array.isArray(resend) && resend.every((id) => typeof id === 'string' && id.length > 0))
  ) {
    throw invalidOption('resend must be a list of run ids', "Pass resend: ['<run id>'].");
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw invalidOption('onProgress must be a function', 'Pass (progress) => { ... }.');
  }

  const concurrency = options.uploadConcurrency;
  if (
    concurrency !== undefined &&
    (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)
  ) {
    throw invalidOption(
      'uploadConcurrency must be a whole number from 1 to 64',
      'Leave it out for 4.',
    );
  }

  for (const [name, value] of Object.entries(options.limits ?? {})) {
    if (!(name in DEFAULT_LIMITS)) {
      throw invalidOption(
        `limits has no field '${name}'`,
        'Known limits: maxEntries, maxPoints, maxRequestBytes.',
      );
    }
    if (!Number.isInteger(value) || (value as number) < 1) {
      throw invalidOption(
        `limits.${name} must be a whole number of at least 1`,
        `Leave limits.${name} out for the default.`,
      );
    }
  }
  if ((options.limits?.maxEntries ?? 0) > MAX_OPS_PER_REQUEST) {
    throw invalidOption(
      `limits.maxEntries may be at most ${MAX_OPS_PER_REQUEST}`,
      'The protocol caps a request at 10,000 ops.',
    );
  }
}

function invalidOption(message: string, hint: string): ValidationError {
  return new ValidationError('invalid_option', message, { hint });
}
