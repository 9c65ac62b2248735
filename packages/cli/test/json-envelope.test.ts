import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Digest, getRun, initRun, objectPath, openReadOnly } from '@tidemark/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  parseEnvelope,
  type RunningServer,
  runCli,
  startServer,
} from '../../../test/cli-harness.js';

const folders: string[] = [];
const servers: RunningServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.stop();
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

function temp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-envelope-'));
  folders.push(dir);
  return dir;
}

describe('the --json envelope', () => {
  it('names the subcommand when its arguments cannot be parsed', async () => {
    const missing = await runCli(['get', '--json']);
    const unknown = await runCli(['daemon', 'start', '--bogus', '--json']);

    expect(missing.code).toBe(2);
    expect(parseEnvelope(missing.stdout)).toMatchObject({
      ok: false,
      command: 'get',
      error: { code: 'usage', message: expect.stringContaining("'run'") },
    });
    expect(unknown.code).toBe(2);
    expect(parseEnvelope(unknown.stdout)).toMatchObject({ ok: false, command: 'daemon start' });
  });

  it('is ok: false with an error and the report when sync quarantines a run (exit 7)', async () => {
    const dir = join(temp(), '.tidemark');
    const run = await initRun({ project: 'team/a', dir, captureContext: false, handleExit: false });
    const artifact = join(temp(), 'model.bin');
    writeFileSync(artifact, 'weights');
    await run.upload('model', artifact);
    await run.stop();
    const db = openReadOnly(dir);
    const manifest = getRun(db, run.id).files[0]?.manifest as Digest;
    db.close();
    rmSync(objectPath(join(dir, 'objects'), manifest));
    const server = await startServer(temp());
    servers.push(server);

    const result = await runCli(['sync', '--dir', dir, '--remote', server.url, '--json'], {
      TIDEMARK_API_TOKEN: server.token,
    });

    expect(result.code, result.stderr).toBe(7);
    const envelope = parseEnvelope<{ quarantined: Array<{ runId: string; hint: string }> }>(
      result.stdout,
    );
    expect(envelope).toMatchObject({ ok: false, command: 'sync' });
    expect(envelope.error).toMatchObject({
      code: 'quarantined',
      hint: expect.stringContaining(`--retry-run ${run.id}`),
    });
    expect(envelope.data.quarantined.map((q) => q.runId)).toEqual([run.id]);
    // The run's own hint says the local copy is what is damaged, and how to find out what.
    expect(envelope.data.quarantined[0]?.hint).toContain("'tidemark verify'");

    // Said again in words, a pass that holds a run back does not call the server up to date.
    const again = await runCli(['sync', '--dir', dir, '--remote', server.url], {
      TIDEMARK_API_TOKEN: server.token,
    });
    expect(again.code, again.stderr).toBe(7);
    expect(again.stdout).toContain(`still quarantined run ${run.id}`);
    expect(again.stdout).not.toContain('up to date');
  });
});
