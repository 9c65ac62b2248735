import {
  type Digest,
  decodeManifest,
  type FieldType,
  fromWireFloat,
  isDigest,
  manifestChunks,
  type Op,
  type RunState,
  type RunSummary,
  type SeriesType,
  toWireFloat,
  type WireFloat,
  type WirePoint,
} from '@tidemark/core';
import { referencedManifests } from './op-objects.js';
import type { WireRunDetail, WireSeries, WireSeriesSummary } from './wire-read.js';

/** Why the fake refused one operation, as a server result carries it. */
export interface OpRefusal {
  code: string;
  reason?: string;
}

const MAX_PATH_BYTES = 4096;
const OP_KINDS = new Set([
  'run.create',
  'run.state',
  'field.set',
  'tags.add',
  'tags.remove',
  'points',
  'file.add',
]);

interface Stamp {
  at: number;
  id: string;
}

interface FakeRun {
  id: string;
  project: string;
  name: string | null;
  description: string | null;
  createdAt: number;
  forkOf: string | null;
  forkStep: number | null;
  state: { value: RunState; failure: string | null; stamp: Stamp | undefined };
  fields: Map<string, { type: FieldType; value: string; stamp: Stamp }>;
  tags: Map<string, { present: boolean; stamp: Stamp }>;
  series: Map<string, { type: SeriesType; points: WirePoint[] }>;
  files: Map<
    string,
    { kind: 'file' | 'dir'; manifest: string; size: number; fileCount: number; stamp: Stamp }
  >;
}

/**
 * What the fake server holds, applying the protocol's rules: last writer wins by `(at, id)`
 * for fields, run state, tags and files; points are appended; an op for an unknown run
 * creates it; chunk presence is per project.
 */
export class FakeServerState {
  readonly runs = new Map<string, FakeRun>();
  readonly chunks = new Map<string, Map<string, Buffer>>();

  hasChunk(project: string, digest: string): boolean {
    return this.chunks.get(project)?.has(digest) ?? false;
  }

  putChunk(project: string, digest: Digest, bytes: Buffer): boolean {
    let held = this.chunks.get(project);
    if (held === undefined) {
      held = new Map();
      this.chunks.set(project, held);
    }
    if (held.has(digest)) return false;
    held.set(digest, Buffer.from(bytes));
    return true;
  }

  /** Why `op` cannot be applied, or undefined when it can. Changes nothing. */
  check(op: Op): OpRefusal | undefined {
    if (!OP_KINDS.has(op.kind) || typeof op.runId !== 'string' || op.runId.length === 0) {
      return { code: 'invalid_op', reason: 'unknown kind or missing run id' };
    }
    if (typeof op.project !== 'string' || typeof op.at !== 'number' || !Number.isFinite(op.at)) {
      return { code: 'invalid_op', reason: 'missing project or time' };
    }

    const known = this.runs.get(op.runId);
    if (known !== undefined && known.project !== op.project) {
      return { code: 'project_mismatch', reason: `run belongs to ${known.project}` };
    }
    if (opPaths(op).some((path) => Buffer.byteLength(path, 'utf8') > MAX_PATH_BYTES)) {
      return { code: 'invalid_path', reason: `a path is longer than ${MAX_PATH_BYTES} bytes` };
    }

    if (op.kind === 'points') {
      for (const series of op.series) {
        const existing = known?.series.get(series.path);
        if (existing !== undefined && existing.type !== series.type) {
          return {
            code: 'series_type_mismatch',
            reason: `series ${series.path} holds ${existing.type}`,
          };
        }
        if (series.type === 'file' && !series.points.every((point) => isDigest(point[2]))) {
          return {
            code: 'invalid_value',
            reason: `series ${series.path} has a point that is not a digest`,
          };
        }
      }
    }

    for (const manifest of referencedManifests(op)) {
      if (!this.#holdsArtifact(op.project, manifest)) return { code: 'missing_chunks' };
    }
    return undefined;
  }

  /** Applies an op that `check` accepted. */
  apply(op: Op): void {
    const run = this.#run(op);
    const stamp = { at: op.at, id: op.id };

    switch (op.kind) {
      case 'run.create':
        run.name = op.name;
        run.description = op.description;
        run.createdAt = op.createdAt;
        run.forkOf = op.forkOf;
        run.forkStep = op.forkStep;
        break;
      case 'run.state':
        if (isNewer(stamp, run.state.stamp))
          run.state = { value: op.state, failure: op.failure, stamp };
        break;
      case 'field.set':
        if (isNewer(stamp, run.fields.get(op.path)?.stamp)) {
          run.fields.set(op.path, { type: op.type, value: op.value, stamp });
        }
        break;
      case 'tags.add':
      case 'tags.remove':
        for (const tag of op.tags) {
          if (isNewer(stamp, run.tags.get(tag)?.stamp)) {
            run.tags.set(tag, { present: op.kind === 'tags.add', stamp });
          }
        }
        break;
      case 'points':
        for (const series of op.series) {
          const held = run.series.get(series.path) ?? { type: series.type, points: [] };
          held.points.push(...series.points);
          run.series.set(series.path, held);
        }
        break;
      case 'file.add':
        if (isNewer(stamp, run.files.get(op.path)?.stamp)) {
          const { fileKind: kind, manifest, size, fileCount } = op;
          run.files.set(op.path, { kind, manifest, size, fileCount, stamp });
        }
        break;
    }
  }

  summaries(project?: string, limit?: number): RunSummary[] {
    const runs = [...this.runs.values()]
      .filter((run) => project === undefined || run.project === project)
      .sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
    return runs.slice(0, limit ?? runs.length).map(summarize);
  }

  detail(runId: string): WireRunDetail | undefined {
    const run = this.runs.get(runId);
    if (run === undefined) return undefined;
    return {
      ...summarize(run),
      description: run.description,
      failure: run.state.failure,
      forkOf: run.forkOf,
      forkStep: run.forkStep,
      host: null,
      fields: [...run.fields.entries()]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([path, field]) => ({ path, type: field.type, value: field.value })),
      series: [...run.series.keys()].sort().map((path) => summarizeSeries(run, path)),
      files: [...run.files.entries()]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([path, { kind, manifest, size, fileCount }]) => ({
          path,
          kind,
          manifest,
          size,
          fileCount,
        })),
    };
  }

  series(runId: string, path: string): WireSeries | undefined {
    const held = this.runs.get(runId)?.series.get(path);
    if (held === undefined) return undefined;
    const points = held.points.map((point, i) => ({ point, i }));
    points.sort((a, b) => a.point[0] - b.point[0] || a.i - b.i);
    return { path, type: held.type, points: points.map(({ point }) => point) };
  }

  #holdsArtifact(project: string, manifest: Digest): boolean {
    const bytes = this.chunks.get(project)?.get(manifest);
    if (bytes === undefined) return false;
    try {
      return manifestChunks(decodeManifest(bytes, manifest)).every((chunk) =>
        this.hasChunk(project, chunk),
      );
    } catch {
      return false;
    }
  }

  #run(op: Op): FakeRun {
    let run = this.runs.get(op.runId);
    if (run === undefined) {
      run = {
        id: op.runId,
        project: op.project,
        name: null,
        description: null,
        createdAt: op.at,
        forkOf: null,
        forkStep: null,
        state: { value: 'running', failure: null, stamp: undefined },
        fields: new Map(),
        tags: new Map(),
        series: new Map(),
        files: new Map(),
      };
      this.runs.set(op.runId, run);
    }
    return run;
  }
}

function isNewer(stamp: Stamp, than: Stamp | undefined): boolean {
  if (than === undefined) return true;
  return stamp.at > than.at || (stamp.at === than.at && stamp.id > than.id);
}

function opPaths(op: Op): string[] {
  if (op.kind === 'field.set' || op.kind === 'file.add') return [op.path];
  if (op.kind === 'points') return op.series.map((series) => series.path);
  return [];
}

function summarize(run: FakeRun): RunSummary {
  const ended = run.state.value !== 'running' && run.state.stamp !== undefined;
  return {
    id: run.id as RunSummary['id'],
    project: run.project,
    name: run.name,
    state: run.state.value,
    createdAt: run.createdAt,
    endedAt: ended ? (run.state.stamp?.at ?? null) : null,
    tags: [...run.tags.entries()]
      .filter(([, tag]) => tag.present)
      .map(([tag]) => tag)
      .sort(),
  };
}

function summarizeSeries(run: FakeRun, path: string): WireSeriesSummary {
  const held = run.series.get(path) as { type: SeriesType; points: WirePoint[] };
  let last: WirePoint | undefined;
  for (const point of held.points) {
    if (last === undefined || point[0] >= last[0]) last = point;
  }

  const numbers =
    held.type === 'float' ? held.points.map((point) => fromWireFloat(point[2] as WireFloat)) : [];
  const comparable = numbers.filter((value) => !Number.isNaN(value));
  return {
    path,
    type: held.type,
    count: held.points.length,
    lastStep: last?.[0] ?? null,
    last: last?.[2] ?? null,
    min: comparable.length === 0 ? null : toWireFloat(comparable.reduce((a, b) => Math.min(a, b))),
    max: comparable.length === 0 ? null : toWireFloat(comparable.reduce((a, b) => Math.max(a, b))),
    nanCount: numbers.length - comparable.length,
  };
}
