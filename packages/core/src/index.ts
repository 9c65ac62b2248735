export { ArtifactStore, type Snapshot } from './artifact-store.js';
export { CHUNK_AVG, CHUNK_MAX, CHUNK_MIN } from './chunker.js';
export { fsyncFolder, writeFileDurably } from './durable-file.js';
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
export { Journal, type JournalEntry, type ReadLimits } from './journal.js';
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
export { objectPath } from './object-layout.js';
export { validatePath } from './paths.js';
export { isProjectName, PROJECT_PATTERN } from './project-name.js';
export {
  getRun,
  listRuns,
  type RunDetail,
  type RunSummary,
  readSeries,
  type SeriesPoint,
  type SeriesSummary,
} from './read-runs.js';
export { type LogMode, type LogOptions, Run, type RunState, type SeriesType } from './run.js';
export { type QueryResult, runQuery } from './sql-query.js';
export {
  DB_FILE,
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
export * from './wire.js';
