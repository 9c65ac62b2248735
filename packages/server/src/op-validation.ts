import {
  type Digest,
  type FieldType,
  isDigest,
  isProjectName,
  isRunId,
  isSafeRelativePath,
  type Op,
  type OpId,
  type PointsOp,
  type RunId,
  ValidationError,
  validatePath,
  type WirePoint,
} from '@tidemark/core';
import { badRequest } from './errors.js';

/** A request whose envelope is sound; each op in it is still unchecked. */
export interface OpsEnvelope {
  storeId: string;
  ops: Array<{ id: OpId; raw: Record<string, unknown> }>;
}

const MAX_TEXT = 1024 * 1024;
const MAX_TAG = 1024;
const RUN_STATES = new Set(['running', 'finished', 'failed', 'crashed']);
const FIELD_TYPES = new Set<FieldType>([
  'float',
  'int',
  'bool',
  'string',
  'datetime',
  'string_set',
]);
const SERIES_TYPES = new Set(['float', 'string', 'file']);
const WIRE_FLOAT_WORDS = new Set(['NaN', 'Infinity', '-Infinity', '-0']);
const OP_ID_PATTERN = /^[\x21-\x7e]{1,256}$/;
const FLOAT_TEXT = /^(-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|NaN|-?Infinity)$/;
const INT_TEXT = /^-?(0|[1-9]\d*)$/;

/**
 * Checks the envelope of `POST /api/v1/ops`. Only an envelope fault fails the whole request;
 * a fault inside one op rejects that op alone (invariant 7), which needs its id to answer.
 */
export function parseOpsEnvelope(body: unknown, maxOps: number): OpsEnvelope {
  if (!isObject(body) || !Array.isArray(body.ops)) {
    throw badRequest('invalid_request', 'the body must be an object { storeId, ops: [...] }');
  }
  if (typeof body.storeId !== 'string' || !OP_ID_PATTERN.test(body.storeId)) {
    throw badRequest(
      'invalid_request',
      'storeId must be a printable string of 1 to 256 characters',
    );
  }
  if (body.ops.length > maxOps) {
    throw badRequest(
      'too_many_ops',
      `a request carries at most ${maxOps} ops, got ${body.ops.length}`,
      'Split the batch.',
    );
  }

  const ops = body.ops.map((raw: unknown, index: number) => {
    if (!isObject(raw) || typeof raw.id !== 'string' || !OP_ID_PATTERN.test(raw.id)) {
      throw badRequest('invalid_request', `op ${index} has no id of 1 to 256 printable characters`);
    }
    return { id: raw.id as OpId, raw };
  });
  return { storeId: body.storeId, ops };
}

/** Checks one op against protocol version 1 and returns it typed. Throws ValidationError. */
export function validateOp(id: OpId, raw: Record<string, unknown>): Op {
  const where = `op ${id}`;
  const base = {
    id,
    runId: runId(raw.runId, where),
    project: project(raw.project, where),
    at: finite(raw.at, `${where}: at`),
  };

  switch (raw.kind) {
    case 'run.create':
      return {
        ...base,
        kind: 'run.create',
        name: text(raw.name, `${where}: name`, { nullable: true }),
        description: text(raw.description, `${where}: description`, { nullable: true }),
        createdAt: finite(raw.createdAt, `${where}: createdAt`),
        forkOf: raw.forkOf == null ? null : runId(raw.forkOf, `${where}: forkOf`),
        forkStep: raw.forkStep == null ? null : finite(raw.forkStep, `${where}: forkStep`),
      };
    case 'run.state':
      if (typeof raw.state !== 'string' || !RUN_STATES.has(raw.state)) {
        throw invalid('invalid_op', `${where}: state must be running, finished, failed or crashed`);
      }
      return {
        ...base,
        kind: 'run.state',
        state: raw.state as 'running',
        failure: text(raw.failure, `${where}: failure`, { nullable: true }),
      };
    case 'field.set':
      return { ...base, kind: 'field.set', ...fieldValue(raw, where) };
    case 'tags.add':
    case 'tags.remove':
      return { ...base, kind: raw.kind, tags: tags(raw.tags, where) };
    case 'points':
      return { ...base, kind: 'points', series: series(raw.series, where) };
    case 'file.add':
      if (raw.fileKind !== 'file' && raw.fileKind !== 'dir') {
        throw invalid('invalid_op', `${where}: fileKind must be 'file' or 'dir'`);
      }
      return {
        ...base,
        kind: 'file.add',
        path: artifactPath(raw.path, `${where}: path`),
        fileKind: raw.fileKind,
        manifest: digest(raw.manifest, `${where}: manifest`),
        size: count(raw.size, `${where}: size`),
        fileCount: count(raw.fileCount, `${where}: fileCount`),
      };
    default:
      throw invalid('unknown_kind', `${where}: kind is not one of protocol version 1`, {
        hint: 'Upgrade the server, or check the client sends protocol version 1.',
      });
  }
}

/**
 * A field value arrives as exact text (invariant 6). It must read back as its type; the text
 * is stored as sent, so a client's spelling of a float or a 2^53+1 integer is kept bit for bit.
 */
function fieldValue(
  raw: Record<string, unknown>,
  where: string,
): { path: string; type: FieldType; value: string } {
  const path = validatePath(raw.path, `${where}: path`);
  if (typeof raw.type !== 'string' || !FIELD_TYPES.has(raw.type as FieldType)) {
    throw invalid(
      'invalid_op',
      `${where}: field type must be one of ${[...FIELD_TYPES].join(', ')}`,
    );
  }
  const type = raw.type as FieldType;
  const value = text(raw.value, `${where}: value`, { nullable: false }) as string;
  if (!fieldTextReadsAs(type, value)) {
    throw invalid('invalid_value', `${where}: value of field ${path} is not a valid ${type}`);
  }
  return { path, type, value };
}

function fieldTextReadsAs(type: FieldType, value: string): boolean {
  switch (type) {
    case 'float':
      return FLOAT_TEXT.test(value);
    case 'int':
      return INT_TEXT.test(value);
    case 'bool':
      return value === 'true' || value === 'false';
    case 'string':
      return true;
    case 'datetime':
      return !Number.isNaN(Date.parse(value));
    case 'string_set':
      return isStringArrayJson(value);
  }
}

function series(value: unknown, where: string): PointsOp['series'] {
  if (!Array.isArray(value) || value.length === 0) {
    throw invalid('invalid_op', `${where}: series must be a non-empty list`);
  }
  return value.map((entry: unknown) => {
    if (!isObject(entry) || typeof entry.type !== 'string' || !SERIES_TYPES.has(entry.type)) {
      throw invalid(
        'invalid_op',
        `${where}: each series needs a path, a type (float, string, file) and points`,
      );
    }
    const type = entry.type as 'float' | 'string' | 'file';
    const path =
      type === 'file'
        ? artifactPath(entry.path, `${where}: series path`)
        : validatePath(entry.path, `${where}: series path`);
    if (!Array.isArray(entry.points) || entry.points.length === 0) {
      throw invalid('invalid_op', `${where}: series ${path} has no points`);
    }
    const points = entry.points.map((point: unknown, index: number) =>
      wirePoint(point, type, `${where}: series ${path} point ${index}`),
    );
    return { path, type, points };
  });
}

function wirePoint(point: unknown, type: 'float' | 'string' | 'file', where: string): WirePoint {
  if (!Array.isArray(point) || point.length !== 3) {
    throw invalid('invalid_point', `${where} must be [step, ts, value]`);
  }
  const [step, ts, value] = point as [unknown, unknown, unknown];
  const checked: WirePoint = [finite(step, `${where}: step`), finite(ts, `${where}: ts`), ''];

  if (type === 'float') {
    const isFloat =
      typeof value === 'number' || (typeof value === 'string' && WIRE_FLOAT_WORDS.has(value));
    if (!isFloat)
      throw invalid(
        'invalid_point',
        `${where}: value must be a number or NaN, Infinity, -Infinity, -0`,
      );
    checked[2] = value as WirePoint[2];
  } else if (type === 'file') {
    checked[2] = digest(value, `${where}: value`);
  } else {
    checked[2] = text(value, `${where}: value`, { nullable: false }) as string;
  }
  return checked;
}

function tags(value: unknown, where: string): string[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > 1000) {
    throw invalid('invalid_op', `${where}: tags must be a list of 1 to 1000 tags`);
  }
  for (const tag of value) {
    if (typeof tag !== 'string' || tag.length === 0 || tag.length > MAX_TAG) {
      throw invalid(
        'invalid_tag',
        `${where}: a tag must be a string of 1 to ${MAX_TAG} characters`,
      );
    }
  }
  return [...new Set(value as string[])];
}

/**
 * The path a file or folder is logged at becomes a name on disk when it is fetched, so on top
 * of the namespace rules it may hold no `.` or `..` segment and no backslash (core refuses the
 * same in `run.upload` and `run.logFile`).
 */
function artifactPath(value: unknown, where: string): string {
  const path = validatePath(value, where);
  if (!isSafeRelativePath(path)) {
    throw invalid('invalid_path', `${where} '${path}' has a '.' or '..' segment or a backslash`, {
      hint: "Artifact paths are plain segments joined by '/'; current clients refuse this one.",
    });
  }
  return path;
}

function runId(value: unknown, where: string): RunId {
  if (typeof value !== 'string' || !isRunId(value)) {
    throw invalid('invalid_run_id', `${where}: runId must be 26 characters of 0-9 and a-z`);
  }
  return value;
}

function project(value: unknown, where: string): string {
  if (!isProjectName(value)) {
    throw invalid('invalid_project', `${where}: project is not a valid project name`, {
      hint: "Project names look like 'name' or 'workspace/name' (letters, digits, '.', '_', '-').",
    });
  }
  return value;
}

function digest(value: unknown, where: string): Digest {
  if (!isDigest(value)) throw invalid('invalid_digest', `${where} is not a digest`);
  return value;
}

function finite(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw invalid('invalid_op', `${where} must be a finite number`);
  }
  return value;
}

function count(value: unknown, where: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw invalid('invalid_op', `${where} must be a non-negative integer`);
  }
  return value as number;
}

function text(value: unknown, where: string, options: { nullable: boolean }): string | null {
  if ((value === null || value === undefined) && options.nullable) return null;
  if (typeof value !== 'string' || value.length > MAX_TEXT) {
    const what = options.nullable ? 'a string or null' : 'a string';
    throw invalid('invalid_op', `${where} must be ${what} of at most ${MAX_TEXT} characters`);
  }
  return value;
}

function isStringArrayJson(value: string): boolean {
  try {
    const parsed: unknown = JSON.parse(value);
    return Array.isArray(parsed) && parsed.every((item) => typeof item === 'string');
  } catch {
    return false;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(code: string, message: string, options: { hint?: string } = {}): ValidationError {
  return new ValidationError(code, message, options);
}
