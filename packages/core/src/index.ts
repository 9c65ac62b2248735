export { ArtifactStore, type Snapshot } from './artifact-store.js';
export { CHUNK_AVG, CHUNK_MAX, CHUNK_MIN } from './chunker.js';
export { type DataFingerprint, fingerprintData } from './data-fingerprint.js';
export {
  fsyncFolder,
  fsyncFolderAsync,
  toArtifactWriteError,
  writeAndRename,
  writeFileDurably,
  writeFileDurablyAsync,
  writeTempFile,
} from './durable-file.js';
export {
  ArtifactError,
  isTidemarkError,
  NotFoundError,
  QueryError,
  StoreError,
  TidemarkError,
  ValidationError,
} from './errors.js';
export { digestSize, getHasher, type Hasher, isDigest, type StreamingDigest } from './hash.js';
export { type Digest, isRunId, newRunId, type OpId, type RunId, type Seq } from './ids.js';
export { type InitRunOptions, initRun } from './init-run.js';
export { Journal, type JournalEntry, MAX_POINTS_PER_ENTRY, type ReadLimits } from './journal.js';
export { type Logger, silentLogger } from './logger.js';
export {
  type DirManifest,
  decodeManifest,
  encodeManifest,
  type FileManifest,
  isSafeRelativePath,
  type Manifest,
  manifestChunks,
} from './manifest.js';
export { OBJECT_CHECK } from './object-check.js';
export { collectGarbage, type GcOptions, type GcReport } from './object-gc.js';
export { objectPath } from './object-layout.js';
export { validatePath } from './paths.js';
export { isProjectName, PROJECT_PATTERN } from './project-name.js';
export {
  getRun,
  listRuns,
  type RunDetail,
  type RunSummary,
  type SeriesSummary,
} from './read-runs.js';
export {
  type ReadSeriesOptions,
  readSeries,
  readSeriesColumns,
  type SeriesColumns,
  type SeriesPoint,
} from './read-series.js';
export { type RepairReport, repairStore } from './repair-store.js';
export { type ChunkSource, type RestoreResult, restoreManifest } from './restore-files.js';
export { type LogMode, type LogOptions, Run, type RunState, type SeriesType } from './run.js';
export { type EndState, RunWriters } from './run-writers.js';
export { type QueryResult, runQuery } from './sql-query.js';
export { isCorruption, toStoreError } from './sqlite-errors.js';
export {
  DB_FILE,
  DEFAULT_STALE_AFTER_MS,
  OBJECTS_DIR,
  openReadOnly,
  resolveStoreDir,
  Store,
  type StoreOptions,
} from './store.js';
export { type TfjsCallbackOptions, tfjsCallback } from './tfjs-callback.js';
export {
  columnsToFloat,
  decodeField,
  type EncodedField,
  encodeField,
  type FieldInput,
  type FieldType,
  type FieldValue,
  floatToColumns,
  fromWireFloat,
  PointFlag,
  toWireFloat,
  type WireFloat,
} from './values.js';
export {
  type FindingSeverity,
  finding,
  type VerifyCheck,
  type VerifyContext,
  type VerifyFinding,
} from './verify-check.js';
export {
  checkObjects,
  type ObjectProblem,
  type ObjectsReport,
  verifyObjects,
} from './verify-objects.js';
export {
  STORE_CHECKS,
  type VerifyOptions,
  type VerifyReport,
  verifyStore,
} from './verify-store.js';
export { scanWal, type WalScan } from './wal-file.js';
export * from './wire.js';
