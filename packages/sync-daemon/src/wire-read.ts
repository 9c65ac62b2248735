import {
  decodeField,
  type FieldType,
  fromWireFloat,
  type RunDetail,
  type RunSummary,
  type SeriesSummary,
  type SeriesType,
  type WireFloat,
  type WirePoint,
  type WireRunDetail,
  type WireSeries,
  type WireSeriesSummary,
} from '@tidemark/core';
import type { RemoteSeries } from './remote-client.js';
import { RemoteError } from './remote-error.js';
import { isObject } from './wire-answers.js';

export type { WireRunDetail, WireSeries, WireSeriesSummary };

const FIELD_TYPES = new Set(['float', 'int', 'bool', 'string', 'datetime', 'string_set']);
const SERIES_TYPES = new Set(['float', 'string', 'file']);

/** Checks and decodes the answer of `GET /api/v1/runs`. */
export function decodeRunList(body: unknown, endpoint: string): RunSummary[] {
  const runs = isObject(body) ? body.runs : undefined;
  if (!Array.isArray(runs) || !runs.every(isRunSummary)) {
    throw RemoteError.protocol(endpoint, 'the answer is not a list of runs');
  }
  return runs.map((run) => ({ ...run, tags: [...run.tags] }));
}

/** Checks and decodes the answer of `GET /api/v1/runs/<id>` into core's `RunDetail`. */
export function decodeRunDetail(body: unknown, endpoint: string): RunDetail {
  if (!isRunSummary(body) || !isObject(body)) {
    throw RemoteError.protocol(endpoint, 'the answer is not a run');
  }
  const wire = body as unknown as WireRunDetail;
  if (!Array.isArray(wire.fields) || !Array.isArray(wire.series) || !Array.isArray(wire.files)) {
    throw RemoteError.protocol(endpoint, 'the run lacks its fields, series or files');
  }

  return {
    ...wire,
    tags: [...wire.tags],
    fields: wire.fields.map((field) => decodeWireField(field, endpoint)),
    series: wire.series.map((series) => decodeSeriesSummary(series, endpoint)),
    files: wire.files.map((file) => ({ ...file })),
  };
}

/** Checks and decodes the answer of `GET /api/v1/runs/<id>/series`. */
export function decodeSeries(body: unknown, endpoint: string): RemoteSeries {
  if (
    !isObject(body) ||
    typeof body.path !== 'string' ||
    !SERIES_TYPES.has(body.type as string) ||
    !Array.isArray(body.points)
  ) {
    throw RemoteError.protocol(endpoint, 'the answer is not a series');
  }

  const type = body.type as SeriesType;
  const points = (body.points as unknown[]).map((point) => {
    if (!isWirePoint(point, type)) throw RemoteError.protocol(endpoint, 'a point is malformed');
    const [step, ts, value] = point;
    return {
      step,
      ts,
      value: type === 'float' ? fromWireFloat(value as WireFloat) : (value as string),
    };
  });
  return { path: body.path, type, points };
}

function decodeWireField(field: unknown, endpoint: string): RunDetail['fields'][number] {
  if (!isObject(field) || typeof field.path !== 'string') {
    throw RemoteError.protocol(endpoint, 'a field is malformed');
  }

  // The protocol table writes a field value as `{ type, value: text }`; accept it nested too.
  const holder = isObject(field.value) ? field.value : field;
  const type = holder.type;
  const text = holder.value;
  if (typeof type !== 'string' || !FIELD_TYPES.has(type) || typeof text !== 'string') {
    throw RemoteError.protocol(endpoint, `field ${field.path} is malformed`);
  }

  try {
    return {
      path: field.path,
      type: type as FieldType,
      value: decodeField(type as FieldType, text),
    };
  } catch {
    throw RemoteError.protocol(endpoint, `field ${field.path} does not hold a ${type}`);
  }
}

function decodeSeriesSummary(series: unknown, endpoint: string): SeriesSummary {
  if (
    !isObject(series) ||
    typeof series.path !== 'string' ||
    !SERIES_TYPES.has(series.type as string)
  ) {
    throw RemoteError.protocol(endpoint, 'a series summary is malformed');
  }

  const wire = series as unknown as WireSeriesSummary;
  const float = (value: unknown): number | null => {
    if (value === null || value === undefined) return null;
    if (!isWireFloat(value))
      throw RemoteError.protocol(endpoint, `series ${wire.path} has a bad number`);
    return fromWireFloat(value);
  };

  return {
    path: wire.path,
    type: wire.type,
    count: wire.count,
    lastStep: wire.lastStep,
    last: wire.type === 'float' ? float(wire.last) : (wire.last as string | null),
    min: float(wire.min),
    max: float(wire.max),
    nanCount: wire.nanCount,
  };
}

function isRunSummary(value: unknown): value is RunSummary {
  return (
    isObject(value) &&
    typeof value.id === 'string' &&
    typeof value.project === 'string' &&
    typeof value.state === 'string' &&
    typeof value.createdAt === 'number' &&
    Array.isArray(value.tags) &&
    value.tags.every((tag) => typeof tag === 'string')
  );
}

function isWirePoint(value: unknown, type: SeriesType): value is WirePoint {
  if (!Array.isArray(value) || value.length !== 3) return false;
  const [step, ts, point] = value as unknown[];
  if (typeof step !== 'number' || typeof ts !== 'number') return false;
  return type === 'float' ? isWireFloat(point) : typeof point === 'string';
}

function isWireFloat(value: unknown): value is WireFloat {
  if (typeof value === 'number') return true;
  return value === 'NaN' || value === 'Infinity' || value === '-Infinity' || value === '-0';
}
