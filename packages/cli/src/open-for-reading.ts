import { openReadOnly, Store } from '@tidemark/core';

/**
 * Opens the store read-only for a listing, after giving it one chance to mark runs whose
 * writer died as crashed: otherwise a run killed with -9 would read "running" until the next
 * process writes. A store this user cannot write is read as it is.
 */
export async function openForReading(
  dir: string | undefined,
): Promise<ReturnType<typeof openReadOnly>> {
  try {
    await Store.open({ dir, create: false }).close();
  } catch {
    // Reading must still work on a store that cannot be opened for writing; the read-only
    // open below reports the real problem if there is one.
  }
  return openReadOnly(dir);
}
