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

/** The JSON body of every error answer. */
export interface WireError {
  error: { code: string; message: string; hint?: string };
}
