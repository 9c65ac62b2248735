export { type BackoffPolicy, backoffDelay, DEFAULT_BACKOFF } from './backoff.js';
export {
  CONFIG_FILE,
  type DaemonConfig,
  type DaemonSettings,
  type LoadConfigOptions,
  loadDaemonConfig,
  readConfigFile,
} from './daemon-config.js';
export { DaemonError, type DaemonErrorCode } from './daemon-error.js';
export {
  type DaemonFailure,
  type DaemonPhase,
  type DaemonState,
  type PassSummary,
  readDaemonState,
  STATE_FILE,
  writeDaemonState,
} from './daemon-state.js';
export { type FailureOptions, FakeRemote, type FakeRemoteOptions } from './fake-remote.js';
export type { OpRefusal } from './fake-server-state.js';
export { type Fault, type FaultPoint, FaultyRemote, parseFaults } from './fault-points.js';
export { type GetArtifactOptions, type GetArtifactReport, getArtifact } from './get-artifact.js';
export {
  HttpRemoteClient,
  type HttpRemoteOptions,
  type HttpRemoteTimeouts,
} from './http-remote-client.js';
export { type PendingReport, type PendingRun, readPending } from './pending-report.js';
export {
  MIN_RATE,
  opsRequestBytesFor,
  PACE_SLICE,
  parseRate,
  RateLimiter,
  type RateLimiterOptions,
  requestTimeoutFor,
} from './rate-limiter.js';
export type { ReleaseRequest } from './release-quarantine.js';
export type {
  HealthAnswer,
  ListRunsOptions,
  PutChunkOptions,
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
  Scheduler,
  type SchedulerOptions,
  type SchedulerStatus,
  type TriggerReason,
} from './scheduler.js';
export { LOCK_FILE, PID_FILE, StoreLock } from './store-lock.js';
export { SyncDaemon, type SyncDaemonOptions } from './sync-daemon.js';
export {
  type QuarantinedRun,
  type SyncLimits,
  type SyncOptions,
  type SyncProgress,
  type SyncReport,
  syncOnce,
} from './sync-once.js';
export { parseSyncWindow, type SyncWindow } from './sync-window.js';
export { realTimers, type TimerHandle, type Timers } from './timers.js';
export { type WakeReason, WakeWatcher, type WakeWatcherOptions } from './wake-watcher.js';
export type { WireRunDetail, WireSeries, WireSeriesSummary } from './wire-read.js';
