export type { Principal } from './auth.js';
export { RequestError } from './errors.js';
export { DEFAULT_LIMITS, type ServerLimits } from './limits.js';
export type {
  WireFileEntry,
  WireRunDetail,
  WireRunSummary,
  WireSeries,
  WireSeriesSummary,
} from './run-queries.js';
export {
  createServer,
  type ServerAddress,
  type ServerOptions,
  type TidemarkServer,
} from './server.js';
export { CHUNKS_DIR, SERVER_DB_FILE, SERVER_SCHEMA_VERSION } from './server-schema.js';
export {
  type CreatedToken,
  type CreateTokenOptions,
  createToken,
  ensureInitialToken,
  INITIAL_TOKEN_FILE,
  listTokens,
  revokeToken,
  type TokenInfo,
  type TokenProjects,
} from './tokens.js';
