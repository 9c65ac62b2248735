export { type FailureOptions, FakeRemote, type FakeRemoteOptions } from './fake-remote.js';
export type { OpRefusal } from './fake-server-state.js';
export {
  HttpRemoteClient,
  type HttpRemoteOptions,
  type HttpRemoteTimeouts,
} from './http-remote-client.js';
export type {
  HealthAnswer,
  ListRunsOptions,
  RemoteClient,
  RemoteMethod,
  RemoteSeries,
  WhoAmI,
} from './remote-client.js';
export {
  isRemoteError,
  parseRetryAfter,
  RemoteError,
  type RemoteErrorCode,
  type RemoteErrorDetails,
} from './remote-error.js';
export { normalizeRemoteUrl } from './remote-url.js';
export {
  type SyncLimits,
  type SyncOptions,
  type SyncProgress,
  type SyncReport,
  syncOnce,
} from './sync-once.js';
export type { WireRunDetail, WireSeries, WireSeriesSummary } from './wire-read.js';
