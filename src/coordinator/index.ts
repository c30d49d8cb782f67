/** Public face of src/coordinator. */
export { startServer, ServerStartError } from './server.js';
export type { RunningServer, StartOptions } from './server.js';
export { DataDirBusyError, readPidFile, isAlive, prepareDataDir, ensureCliToken, CLI_TOKEN_FILE, PID_FILE } from './data-dir.js';
export type { PidInfo } from './data-dir.js';
export type { RouteSpec } from './route-spec.js';
export { TokenLedger, TOKEN_LEDGER_DIR } from './token-ledger.js';
export type { TokenRecord, TokenView } from './token-ledger.js';
export { issueRecorded, refreshToken, resolveJti, rotateSigningKeys } from './token-service.js';
export { TenantMeta, TENANT_META_DIR, TENANT_META_REFRESH_MS } from './tenant-meta.js';
export type { TenantRecord, TenantMove, TenantMovePhase, TenantRateLimit, TenantChangeListener } from './tenant-meta.js';
