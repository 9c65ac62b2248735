import { randomBytes } from 'node:crypto';
import {
  type Digest,
  encodeManifest,
  getHasher,
  newRunId,
  type Op,
  type OpId,
  type RunId,
} from '@tidemark/core';
import type { RemoteClient } from '@tidemark/sync-daemon';
import { afterEach, describe, expect, it } from 'vitest';

export interface ContractSubject {
  remote: RemoteClient;
  close(): Promise<void>;
}

/**
 * The rules of docs/protocol.md that every RemoteClient must keep, run against one
 * implementation. `open` gives a remote with a token that may write `project-a` and `project-b`.
 */
export function describeRemoteContract(name: string, open: () => Promise<ContractSubject>): void {
  describe(`the remote contract: ${name}`, () => {
    let subject: ContractSubject | undefined;
    const remote = async (): Promise<RemoteClient> => {
      subject = await open();
      return subject.remote;
    };

    afterEach(async () => {
      await subject?.close();
      subject = undefined;
    });

    it('answers health with protocol 1', async () => {
      expect(await (await remote()).health()).toEqual({ ok: true, protocol: 1 });
    });

    it('applies an op once however often it arrives', async () => {
      const r = await remote();
      const ops = [fieldSet(newRunId(), 'a', '1', 10)];

      const first = await r.sendOps({ storeId: 's', ops });
      const again = await r.sendOps({ storeId: 's', ops });

      expect(first.results.map((x) => x.status)).toEqual(['applied']);
      expect(again.results.map((x) => x.status)).toEqual(['duplicate']);
    });

    it('keeps the newest field value when an older op arrives late', async () => {
      const r = await remote();
      const runId = newRunId();

      await r.sendOps({ storeId: 's', ops: [fieldSet(runId, 'lr', '0.2', 20)] });
      await r.sendOps({ storeId: 's', ops: [fieldSet(runId, 'lr', '0.1', 10)] });

      const run = await r.getRun(runId);
      expect(run.fields.find((f) => f.path === 'lr')?.value).toBe(0.2);
    });

    it('creates a run on its first op and fills it in when run.create arrives later', async () => {
      const r = await remote();
      const runId = newRunId();
      const create: Op = {
        ...base(runId, 5),
        kind: 'run.create',
        name: 'late',
        description: null,
        createdAt: 5,
        forkOf: null,
        forkStep: null,
      };

      await r.sendOps({ storeId: 's', ops: [fieldSet(runId, 'x', '1', 6), create] });

      expect((await r.getRun(runId)).name).toBe('late');
    });

    it('refuses a file op until the project holds its manifest and chunks, and applies the others', async () => {
      const r = await remote();
      const runId = newRunId();
      const { manifest, objects } = await artifact();
      const add: Op = {
        ...base(runId, 1),
        kind: 'file.add',
        path: 'model',
        fileKind: 'file',
        manifest,
        size: 64,
        fileCount: 1,
      };

      const before = await r.sendOps({ storeId: 's', ops: [add, fieldSet(runId, 'ok', '1', 2)] });
      expect(before.results.map((x) => [x.status, x.code])).toEqual([
        ['rejected', 'missing_chunks'],
        ['applied', undefined],
      ]);

      expect(new Set(await r.missingChunks('project-a', [...objects.keys()]))).toEqual(
        new Set(objects.keys()),
      );
      for (const [digest, bytes] of objects) await r.putChunk('project-a', digest, bytes);
      const after = await r.sendOps({ storeId: 's', ops: [add] });
      expect(after.results.map((x) => x.status)).toEqual(['applied']);
    });

    it('answers presence per project and serves a chunk only to a project holding it', async () => {
      const r = await remote();
      const bytes = randomBytes(100);
      const digest = (await getHasher()).digest(bytes);

      expect(await r.putChunk('project-a', digest, bytes)).toEqual({ stored: true });
      expect(await r.putChunk('project-a', digest, bytes)).toEqual({ stored: false });

      expect(await r.missingChunks('project-a', [digest])).toEqual([]);
      expect(await r.missingChunks('project-b', [digest])).toEqual([digest]);
      expect(await r.getChunk('project-a', digest)).toEqual(bytes);
      await expect(r.getChunk('project-b', digest)).rejects.toMatchObject({
        code: 'rejected',
        status: 404,
      });
    });

    it('refuses a chunk whose bytes do not match its digest', async () => {
      const r = await remote();
      const digest = (await getHasher()).digest(Buffer.from('right'));

      await expect(r.putChunk('project-a', digest, Buffer.from('wrong'))).rejects.toMatchObject({
        code: 'rejected',
        status: 400,
        serverCode: 'digest_mismatch',
      });
      expect(await r.missingChunks('project-a', [digest])).toEqual([digest]);
    });

    it('keeps float specials of points exactly', async () => {
      const r = await remote();
      const runId = newRunId();
      const points: Op = {
        ...base(runId, 1),
        kind: 'points',
        series: [
          {
            path: 'm',
            type: 'float',
            points: [
              [2, 1, 'NaN'],
              [0, 1, '-0'],
              [1, 1, '-Infinity'],
            ],
          },
        ],
      };

      await r.sendOps({ storeId: 's', ops: [points] });
      const series = await r.getSeries(runId, 'm');

      expect(series.points.map((p) => p.step)).toEqual([0, 1, 2]);
      expect(Object.is(series.points[0]?.value, -0)).toBe(true);
      expect(series.points[1]?.value).toBe(Number.NEGATIVE_INFINITY);
      expect(Number.isNaN(series.points[2]?.value)).toBe(true);
    });
  });
}

let counter = 0;

function base(runId: RunId, at: number) {
  counter += 1;
  return {
    id: `contract${randomBytes(4).toString('hex')}-${counter}` as OpId,
    runId,
    project: 'project-a',
    at,
  };
}

function fieldSet(runId: RunId, path: string, value: string, at: number): Op {
  const type = value.includes('.') ? 'float' : 'int';
  return { ...base(runId, at), kind: 'field.set', path, type, value };
}

async function artifact(): Promise<{ manifest: Digest; objects: Map<Digest, Buffer> }> {
  const hasher = await getHasher();
  const chunk = randomBytes(64);
  const chunkDigest = hasher.digest(chunk);
  const manifestBytes = Buffer.from(
    encodeManifest({ v: 1, type: 'file', size: 64, chunks: [chunkDigest] }),
  );
  const manifest = hasher.digest(manifestBytes);
  return {
    manifest,
    objects: new Map([
      [chunkDigest, chunk],
      [manifest, manifestBytes],
    ]),
  };
}
