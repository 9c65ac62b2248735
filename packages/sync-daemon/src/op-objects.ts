import { type Digest, isDigest, type Op } from '@tidemark/core';

/**
 * The manifests an operation refers to: the artifact of a `file.add`, and every point of a
 * file series (its text is the manifest digest). The server rejects such an op with
 * `missing_chunks` until the project holds each manifest and every chunk it lists.
 */
export function referencedManifests(op: Op): Digest[] {
  if (op.kind === 'file.add') return [op.manifest];
  if (op.kind !== 'points') return [];

  const out = new Set<Digest>();
  for (const series of op.series) {
    if (series.type !== 'file') continue;
    for (const [, , value] of series.points) {
      if (isDigest(value)) out.add(value);
    }
  }
  return [...out];
}
