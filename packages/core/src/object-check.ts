import { join } from 'node:path';
import { ArtifactStore } from './artifact-store.js';
import { OBJECTS_DIR } from './store.js';
import { finding, type VerifyCheck, type VerifyFinding } from './verify-check.js';
import { checkObjects, type ObjectProblem } from './verify-objects.js';

/** Findings listed one by one per kind of problem; the rest are counted in one more. */
const LISTED = 20;

const CODES: Record<ObjectProblem['problem'], { code: string; what: string; hint: string }> = {
  mismatch: {
    code: 'object_corrupt',
    what: 'does not match its digest',
    hint:
      'The file was changed or damaged on disk. If the run was synced, ' +
      "'tidemark get --remote' restores the artifact from the server.",
  },
  unreadable: {
    code: 'object_unreadable',
    what: 'cannot be read',
    hint: 'Check the permissions of the objects folder.',
  },
  missing: {
    code: 'object_missing',
    what: 'is referenced but not in the store',
    hint: "If the run was synced, 'tidemark get --remote' restores the artifact from the server.",
  },
};

/**
 * The artifact part of `tidemark verify`: re-hashes every object and checks that everything
 * the database refers to is present (see `verifyObjects`). Reads only.
 */
export const OBJECT_CHECK: VerifyCheck = {
  name: 'objects',
  needs: 'database',
  async run({ dir, db }) {
    if (db === undefined) return [];
    const objects = new ArtifactStore(join(dir, OBJECTS_DIR), { create: false });
    try {
      const report = await checkObjects(db, objects);
      const findings: VerifyFinding[] = [
        finding(
          'objects',
          'info',
          'objects_checked',
          `${report.objects} objects (${report.bytes} bytes) re-hashed, ${report.referenced} referenced`,
        ),
      ];
      for (const kind of ['mismatch', 'unreadable', 'missing'] as const) {
        const problems = report.problems.filter((p) => p.problem === kind);
        const { code, what, hint } = CODES[kind];
        for (const problem of problems.slice(0, LISTED)) {
          findings.push(
            finding(
              'objects',
              'error',
              code,
              `object ${problem.digest} ${what} (${problem.path})`,
              {
                hint,
              },
            ),
          );
        }
        if (problems.length > LISTED) {
          findings.push(
            finding('objects', 'error', code, `${problems.length - LISTED} more objects ${what}`, {
              hint,
            }),
          );
        }
      }
      return findings;
    } finally {
      await objects.close();
    }
  },
};
