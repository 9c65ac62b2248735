import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Digest,
  encodeManifest,
  getHasher,
  type Manifest,
  newRunId,
  type Op,
  type OpId,
  type OpsResponse,
  type RunId,
} from '@tidemark/core';
import {
  createServer,
  ensureInitialToken,
  type ServerLimits,
  type TidemarkServer,
} from '@tidemark/server';

/** A server on 127.0.0.1 over its own temp data folder, with the folder's initial token. */
export interface TestServer {
  dataDir: string;
  url: string;
  token: string;
  server: TidemarkServer;
  stop(): Promise<void>;
}

export function tempDir(prefix = 'tidemark-server-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startServer(
  options: { limits?: Partial<ServerLimits> } = {},
): Promise<TestServer> {
  const dataDir = tempDir();
  const { path } = ensureInitialToken(dataDir);
  const token = readFileSync(path, 'utf8').trim();
  const server = createServer({ dataDir, ...(options.limits ? { limits: options.limits } : {}) });
  const { url } = await server.listen(0, '127.0.0.1');
  return {
    dataDir,
    url,
    token,
    server,
    async stop() {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A thin client for one token; answers status and parsed JSON (or raw bytes). */
export function client(base: string, token: string | undefined) {
  const headers = (extra: Record<string, string> = {}): Record<string, string> =>
    token === undefined ? extra : { authorization: `Bearer ${token}`, ...extra };

  // biome-ignore lint/suspicious/noExplicitAny: answers are checked by assertions, not by types.
  async function json(response: Response): Promise<{ status: number; body: any }> {
    const text = await response.text();
    return { status: response.status, body: text.length > 0 ? JSON.parse(text) : undefined };
  }

  return {
    get: async (path: string) => json(await fetch(base + path, { headers: headers() })),
    getBytes: async (path: string) => {
      const response = await fetch(base + path, { headers: headers() });
      return { status: response.status, bytes: Buffer.from(await response.arrayBuffer()) };
    },
    post: async (path: string, body: unknown) =>
      json(
        await fetch(base + path, {
          method: 'POST',
          headers: headers({ 'content-type': 'application/json' }),
          body: typeof body === 'string' ? body : JSON.stringify(body),
        }),
      ),
    put: async (path: string, bytes: Uint8Array) =>
      json(
        await fetch(base + path, {
          method: 'PUT',
          headers: headers({ 'content-type': 'application/octet-stream' }),
          body: bytes,
        }),
      ),
    ops: async (ops: Op[]) => {
      const answer = await json(
        await fetch(`${base}/api/v1/ops`, {
          method: 'POST',
          headers: headers({ 'content-type': 'application/json' }),
          body: JSON.stringify({ storeId: 'test-store', ops }),
        }),
      );
      return answer as { status: number; body: OpsResponse };
    },
  };
}

/** Builds ops for one run; ids are `<writer>-<n>`, sorting in the order they are built. */
export function opsFor(project: string, runId: RunId = newRunId(1_700_000_000_000)) {
  const writer = randomBytes(6).toString('hex');
  let counter = 0;
  const base = (at: number) => {
    counter += 1;
    return { id: `${writer}-${counter.toString().padStart(6, '0')}` as OpId, runId, project, at };
  };
  return {
    runId,
    create: (at: number, name: string | null = 'baseline'): Op => ({
      ...base(at),
      kind: 'run.create',
      name,
      description: null,
      createdAt: at,
      forkOf: null,
      forkStep: null,
    }),
    field: (
      at: number,
      path: string,
      type: 'float' | 'int' | 'string' | 'bool',
      value: string,
    ): Op => ({
      ...base(at),
      kind: 'field.set',
      path,
      type,
      value,
    }),
    state: (
      at: number,
      state: 'running' | 'finished' | 'failed' | 'crashed',
      failure: string | null = null,
    ): Op => ({
      ...base(at),
      kind: 'run.state',
      state,
      failure,
    }),
    tags: (at: number, kind: 'tags.add' | 'tags.remove', tags: string[]): Op => ({
      ...base(at),
      kind,
      tags,
    }),
    points: (at: number, series: Array<Extract<Op, { kind: 'points' }>['series'][number]>): Op => ({
      ...base(at),
      kind: 'points',
      series,
    }),
    file: (
      at: number,
      path: string,
      manifest: Digest,
      size: number,
      fileKind: 'file' | 'dir' = 'file',
      fileCount = 1,
    ): Op => ({
      ...base(at),
      kind: 'file.add',
      path,
      fileKind,
      manifest,
      size,
      fileCount,
    }),
  };
}

/** Cuts bytes into fixed pieces (the server does not care where cuts fall) and builds a manifest. */
export async function fileObjects(bytes: Uint8Array, pieceSize = 1024) {
  const hasher = await getHasher();
  const chunks: Array<{ digest: Digest; bytes: Uint8Array }> = [];
  for (let offset = 0; offset < bytes.length; offset += pieceSize) {
    const piece = bytes.subarray(offset, offset + pieceSize);
    chunks.push({ digest: hasher.digest(piece), bytes: piece });
  }
  const manifest: Manifest = {
    v: 1,
    type: 'file',
    size: bytes.length,
    chunks: chunks.map((c) => c.digest),
  };
  const manifestBytes = encodeManifest(manifest);
  return { chunks, manifest, manifestBytes, manifestDigest: hasher.digest(manifestBytes) };
}
