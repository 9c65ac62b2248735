/**
 * The one error base of tidemark. Every error carries a stable string `code` that scripts may
 * match on, an optional `hint` telling the user what to do next, and whether retrying the same
 * call later may succeed. Messages carry ids, paths and offsets, never payload values or tokens.
 */
export class TidemarkError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  readonly retryable: boolean;

  constructor(
    code: string,
    message: string,
    options: { hint?: string; retryable?: boolean; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options.hint;
    this.retryable = options.retryable ?? false;
  }

  toJSON(): { code: string; message: string; hint?: string; retryable: boolean } {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint === undefined ? {} : { hint: this.hint }),
      retryable: this.retryable,
    };
  }
}

/** A caller passed a value tidemark cannot record as given. Nothing was written. */
export class ValidationError extends TidemarkError {}

/** The local store could not be opened, migrated, read or written. */
export class StoreError extends TidemarkError {}

/** An artifact could not be snapshotted, stored or read back intact. */
export class ArtifactError extends TidemarkError {}

/** A query was refused or failed. */
export class QueryError extends TidemarkError {}

/** A run, field, series or file that was asked for does not exist. */
export class NotFoundError extends TidemarkError {}

export function isTidemarkError(error: unknown): error is TidemarkError {
  return error instanceof TidemarkError;
}
