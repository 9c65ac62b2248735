import { hostname } from 'node:os';
import { type DataFingerprint, fingerprintData, fingerprintFields } from './data-fingerprint.js';
import { NotFoundError, ValidationError } from './errors.js';
import { isRunId, newRunId, type RunId } from './ids.js';
import type { Logger } from './logger.js';
import { isProjectName } from './project-name.js';
import { HEARTBEAT_MS, type LogMode, Run } from './run.js';
import { captureContext } from './run-context.js';
import { Store } from './store.js';
import { encodeField } from './values.js';

export interface InitRunOptions {
  /** `workspace/name` or `name`: letters, digits, `.`, `_`, `-`. */
  project: string;
  name?: string;
  description?: string;
  tags?: string[];
  /** Store folder; defaults to `$TIDEMARK_DIR`, else `./.tidemark`. Ignored when `store` is given. */
  dir?: string;
  /** An already open store; the run then leaves closing it to the caller. */
  store?: Store;
  /**
   * Continue an existing run: new points append to its series, every earlier point is kept.
   * Several processes may resume one run at once (data-parallel ranks); it ends with the last.
   */
  resume?: string;
  /**
   * Start a new run that continues `forkOf`: it records its parent and `forkStep`, and reading
   * its series with `includeForkParents` (or the `lineage_points_view`) shows the parent's
   * points up to `forkStep` before its own. Defaults to the parent's highest step.
   */
  forkOf?: string;
  forkStep?: number;
  /** Record git, command line, host and package versions under `context/` (default true). */
  captureContext?: boolean;
  /**
   * Input files or directories to fingerprint under `context/data/` (path, digest, size); they
   * are hashed, not copied. Folders are walked as `run.upload` walks them (links followed).
   * Skipped when `captureContext` is false.
   */
  dataFiles?: string[];
  logMode?: LogMode;
  /** Batched mode: longest time a point waits in memory (default 1000 ms). */
  flushIntervalMs?: number;
  /** Batched mode: most points held in memory before a commit (default 10,000). */
  maxBufferedPoints?: number;
  /** End the run on process exit and SIGINT/SIGTERM if it was not stopped (default true). */
  handleExit?: boolean;
  logger?: Logger;
  clock?: () => number;
}

const KNOWN_OPTIONS = new Set([
  'project',
  'name',
  'description',
  'tags',
  'dir',
  'store',
  'resume',
  'forkOf',
  'forkStep',
  'captureContext',
  'dataFiles',
  'logMode',
  'flushIntervalMs',
  'maxBufferedPoints',
  'handleExit',
  'logger',
  'clock',
]);

/**
 * Starts (or resumes) a run and records it in the local store before returning.
 *
 * @example
 * const run = await initRun({ project: 'team/mnist', name: 'baseline', tags: ['cnn'] });
 * run.set('parameters', { lr: 0.001, optimizer: { name: 'adam' } });
 * run.log('metrics/loss', 0.31, { step: 1 });
 * await run.stop();
 */
export async function initRun(options: InitRunOptions): Promise<Run> {
  validateOptions(options);
  const context = options.captureContext !== false;
  // Hashing happens before anything is written: an unreadable data file starts no run.
  const prints: DataFingerprint[] =
    context && options.dataFiles !== undefined ? await fingerprintData(options.dataFiles) : [];
  const store =
    options.store ?? Store.open({ dir: options.dir, logger: options.logger, clock: options.clock });
  const ownsStore = options.store === undefined;

  try {
    const started =
      options.resume === undefined
        ? createRun(store, options)
        : resumeRun(store, options.resume, options.project);
    const run = new Run({
      store,
      id: started.id,
      project: options.project,
      logMode: options.logMode ?? 'durable',
      flushIntervalMs: options.flushIntervalMs ?? 1000,
      maxBufferedPoints: options.maxBufferedPoints ?? 10_000,
      ownsStore,
      startStep: started.forkStep ?? -1,
    });

    if (options.tags !== undefined && options.tags.length > 0) run.addTags(...options.tags);
    if (options.resume === undefined && context) {
      for (const [path, value] of [...captureContext(), ...fingerprintFields(prints)]) {
        run.set(path, value);
      }
    }
    if (options.handleExit !== false) installExitHooks(run);
    startHeartbeat(run);
    return run;
  } catch (error) {
    if (ownsStore) await store.close();
    throw error;
  }
}

interface StartedRun {
  id: RunId;
  forkStep: number | null;
}

function createRun(store: Store, options: InitRunOptions): StartedRun {
  const now = store.opTime();
  const id = newRunId(now);
  const forkOf = options.forkOf ?? null;

  return store.transaction(() => {
    let forkStep = options.forkStep ?? null;
    if (forkOf !== null) {
      assertRunExists(store, forkOf);
      forkStep ??= parentLastStep(store, forkOf);
    }
    store.db
      .prepare('INSERT OR IGNORE INTO projects (name, created_at) VALUES (?, ?)')
      .run(options.project, now);
    const project = store.db
      .prepare('SELECT id FROM projects WHERE name = ?')
      .get(options.project) as { id: number };
    store.db
      .prepare(
        `INSERT INTO runs (id, project_id, name, description, state, created_at, heartbeat_at, host, pid, fork_of, fork_step)
         VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        id,
        project.id,
        options.name ?? null,
        options.description ?? null,
        now,
        now,
        hostname(),
        process.pid,
        forkOf,
        forkStep,
      );
    store.writers.register(id, now);
    store.journal.append(id, 'run.create', {
      name: options.name ?? null,
      description: options.description ?? null,
      createdAt: now,
      forkOf,
      forkStep,
    });
    return { id, forkStep };
  });
}

/** A fork made without a step continues from wherever its parent had got to. */
function parentLastStep(store: Store, runId: string): number | null {
  const row = store.db
    .prepare('SELECT max(last_step) AS step FROM series WHERE run_id = ?')
    .get(runId) as { step: number | null };
  return row.step;
}

function resumeRun(store: Store, runId: string, project: string): StartedRun {
  const row = assertRunExists(store, runId);
  if (row.project !== project) {
    throw new ValidationError(
      'project_mismatch',
      `run ${runId} belongs to project ${row.project}, not ${project}`,
      {
        hint: `Pass project: '${row.project}' to resume it.`,
      },
    );
  }
  const id = runId as RunId;
  const now = store.opTime();
  store.transaction(() => {
    const current = store.db.prepare('SELECT state FROM runs WHERE id = ?').get(id) as {
      state: string;
    };
    store.db
      .prepare(
        "UPDATE runs SET state = 'running', ended_at = NULL, failure = NULL, heartbeat_at = ?, host = ?, pid = ? WHERE id = ?",
      )
      .run(now, hostname(), process.pid, id);
    // Another rank may already be writing the run; only an ended run starts a new session.
    if (current.state !== 'running') {
      store.writers.forgetEnded(id);
      store.journal.append(id, 'run.state', { state: 'running', failure: null });
    }
    store.writers.register(id, now);
  });
  return { id, forkStep: row.forkStep };
}

function assertRunExists(
  store: Store,
  runId: string,
): { project: string; forkStep: number | null } {
  const row = store.db
    .prepare(
      `SELECT p.name AS project, r.fork_step AS forkStep
       FROM runs r JOIN projects p ON p.id = r.project_id WHERE r.id = ?`,
    )
    .get(runId) as { project: string; forkStep: number | null } | undefined;
  if (row === undefined) {
    throw new NotFoundError('run_not_found', `no run ${runId} in ${store.dir}`, {
      hint: "List runs with 'tidemark runs'; ids are shown in the first column.",
    });
  }
  return row;
}

function validateOptions(options: InitRunOptions): void {
  if (typeof options !== 'object' || options === null) {
    throw new ValidationError('invalid_option', 'initRun takes an options object', {
      hint: "Call initRun({ project: 'team/project' }).",
    });
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) {
      throw new ValidationError('invalid_option', `initRun has no option '${key}'`, {
        hint: `Known options: ${[...KNOWN_OPTIONS].join(', ')}.`,
      });
    }
  }
  if (typeof options.project !== 'string' || !isProjectName(options.project)) {
    throw new ValidationError(
      'invalid_project',
      `project '${String(options.project)}' is not a valid project name`,
      {
        hint: "Use 'workspace/name' or 'name' with letters, digits, '.', '_' and '-'.",
      },
    );
  }
  if (
    options.resume !== undefined &&
    (typeof options.resume !== 'string' || !isRunId(options.resume))
  ) {
    throw new ValidationError(
      'invalid_run_id',
      `resume: '${String(options.resume)}' is not a run id`,
      {
        hint: "Run ids are 26 lower-case letters and digits, as 'tidemark runs' shows them.",
      },
    );
  }
  if (options.resume !== undefined && options.forkOf !== undefined) {
    throw new ValidationError('invalid_option', 'resume and forkOf cannot be used together', {
      hint: 'Resume continues a run; forkOf starts a new one from it. Pick one.',
    });
  }
  if (options.forkStep !== undefined && options.forkOf === undefined) {
    throw new ValidationError('invalid_option', 'forkStep needs forkOf', {
      hint: 'Pass the run to fork as forkOf.',
    });
  }
  if (options.forkOf !== undefined && !isRunId(String(options.forkOf))) {
    throw new ValidationError(
      'invalid_run_id',
      `forkOf: '${String(options.forkOf)}' is not a run id`,
      { hint: "Run ids are 26 lower-case letters and digits, as 'tidemark runs' shows them." },
    );
  }
  if (
    options.forkStep !== undefined &&
    (typeof options.forkStep !== 'number' || !Number.isFinite(options.forkStep))
  ) {
    throw new ValidationError('invalid_option', 'forkStep must be a finite number', {
      hint: 'Pass the step of the parent run the fork continues from.',
    });
  }
  if (
    options.logMode !== undefined &&
    options.logMode !== 'durable' &&
    options.logMode !== 'batched'
  ) {
    throw new ValidationError(
      'invalid_option',
      `logMode '${String(options.logMode)}' is not known`,
      {
        hint: "Use 'durable' (default) or 'batched'.",
      },
    );
  }
  for (const key of ['name', 'description'] as const) {
    if (options[key] !== undefined) encodeField(options[key] as string, key);
  }
}

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/** The signal handlers tidemark installed, told apart from the program's own. */
const OUR_HANDLERS = new WeakSet<(...args: never[]) => void>();

/**
 * Ends a run the process forgot to stop. On exit it is finished, or failed for a non-zero exit
 * code. On SIGINT or SIGTERM with no other handler it is failed and the signal raised again, so
 * the process ends as it would have without tidemark; when the program handles the signal
 * itself, buffered points are committed and the run is left to that handler (or to exit).
 */
function installExitHooks(run: Run): void {
  const onExit = (code: number): void => {
    run.endNow(
      code === 0 ? 'finished' : 'failed',
      code === 0 ? null : `process exited with code ${code}`,
    );
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    const listeners = process.listeners(signal) as Array<(...args: never[]) => void>;
    if (listeners.some((listener) => !OUR_HANDLERS.has(listener))) {
      if (run.state === 'running' && !run.store.closed) run.flush();
      return;
    }
    run.endNow('failed', `interrupted by ${signal}`);
    removeHooks();
    // The last of our handlers (one per open run) re-raises, once every run has ended.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  OUR_HANDLERS.add(onSignal);
  const removeHooks = (): void => {
    process.removeListener('exit', onExit);
    for (const signal of SIGNALS) process.removeListener(signal, onSignal);
  };

  process.on('exit', onExit);
  for (const signal of SIGNALS) process.on(signal, onSignal);
  run.onStop(removeHooks);
}

function startHeartbeat(run: Run): void {
  const timer = setInterval(() => run.heartbeat(), HEARTBEAT_MS).unref();
  run.onStop(() => clearInterval(timer));
}
