import type { Digest, OpId, RunId } from './ids.js';
import type { FieldType, WireFloat } from './values.js';

/**
 * The sync protocol between a store and a server, version 1. The server applies each
 * operation at most once by its `id`, so a client may send any batch again (DESIGN invariant 3).
 * `docs/protocol.md` describes the endpoints that carry these shapes.
 */
export const PROTOCOL_VERSION = 1;

interface OpBase {
  /** Stable identity: the server applies an operation with a given id once. */
  id: OpId;
  runId: RunId;
  project: string;
  /** When the writer recorded it, ms since the epoch; orders last-writer-wins fields. */
  at: number;
}

export interface RunCreateOp extends OpBase {
  kind: 'run.create';
  name: string | null;
  description: string | null;
  createdAt: number;
  forkOf: string | null;
  forkStep: number | null;
}

export interface RunStateOp extends OpBase {
  kind: 'run.state';
  state: 'running' | 'finished' | 'failed' | 'crashed';
  failure: string | null;
}

export interface FieldSetOp extends OpBase {
  kind: 'field.set';
  path: string;
  type: FieldType;
  value: string;
}

export interface TagsOp extends OpBase {
  kind: 'tags.add' | 'tags.remove';
  tags: string[];
}

/** One point: step, timestamp, then a float (float series) or text (string and file series). */
export type WirePoint = [step: number, ts: number, value: WireFloat | string];

export interface PointsOp extends OpBase {
  kind: 'points';
  series: Array<{ path: string; type: 'float' | 'string' | 'file'; points: WirePoint[] }>;
}

export interface FileAddOp extends OpBase {
  kind: 'file.add';
  path: string;
  fileKind: 'file' | 'dir';
  manifest: Digest;
  size: number;
  fileCount: number;
}

export type Op = RunCreateOp | RunStateOp | FieldSetOp | TagsOp | PointsOp | FileAddOp;
export type OpKind = Op['kind'];

/** POST /api/v1/ops */
export interface OpsRequest {
  storeId: string;
  ops: Op[];
}

export type OpStatus = 'applied' | 'duplicate' | 'rejected';

export interface OpsResponse {
  results: Array<{ id: OpId; status: OpStatus; code?: string; reason?: string }>;
}

/** POST /api/v1/chunks/missing */
export interface MissingChunksRequest {
  project: string;
  digests: Digest[];
}

export interface MissingChunksResponse {
  missing: Digest[];
}

/** A chunk of a batch the server did not keep, and why (`digest_mismatch`, `digest_collision`). */
export interface ChunkRefusal {
  digest: Digest;
  code: string;
  message: string;
}

/**
 * The answer to `POST /api/v1/chunks/batch`: how many chunks the project did not hold before,
 * and those refused. Every other chunk of the batch is held by the project now.
 */
export interface ChunkBatchResponse {
  stored: number;
  refused: ChunkRefusal[];
}

/** The JSON body of every error answer. */
export interface WireError {
  error: { code: string; message: string; hint?: string };
}

/**
 * The read endpoints (`GET /api/v1/runs...`) answer in core's read shapes, except where JSON
 * cannot hold a value exactly: floats travel as `WireFloat` and field values as their exact
 * text, so NaN, infinities, -0 and 2^53+1 survive (invariant 6).
 */
export interface WireRunSummary {
  id: RunId;
  project: string;
  name: string | null;
  state: 'running' | 'finished' | 'failed' | 'crashed';
  createdAt: number;
  endedAt: number | null;
  tags: string[];
}

export interface WireSeriesSummary {
  path: string;
  type: 'float' | 'string' | 'file';
  count: number;
  lastStep: number | null;
  last: WireFloat | string | null;
  /** Over finite and infinite values; NaN points are never compared. */
  min: WireFloat | null;
  max: WireFloat | null;
  nanCount: number;
}

export interface WireFileEntry {
  path: string;
  kind: 'file' | 'dir';
  manifest: string;
  size: number;
  fileCount: number;
}

/** `GET /api/v1/runs/<id>`. */
export interface WireRunDetail extends WireRunSummary {
  description: string | null;
  failure: string | null;
  forkOf: string | null;
  forkStep: number | null;
  host: string | null;
  fields: Array<{ path: string; type: FieldType; value: string }>;
  series: WireSeriesSummary[];
  files: WireFileEntry[];
}

/** `GET /api/v1/runs/<id>/series?path=`. */
export interface WireSeries {
  path: string;
  type: 'float' | 'string' | 'file';
  points: WirePoint[];
}
