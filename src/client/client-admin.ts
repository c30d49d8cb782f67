/**
 * The administrative half of the client's API: tokens (a `token.admin` token), plugins and the
 * delivery queue (a `plugin.admin` token; the queue needs a server administrator), and tenants (a
 * `tenant.admin` token). A layer of `EventDbxClient` (client.ts), which adds the data methods on
 * top; kept apart so neither file holds the whole API. Not exported from index.ts.
 */
import { ClientBase, seg } from './client-base.js';
import type { OpenedStream } from './stream.js';
import type { TenantImportSummary, TenantMetaEntry, TenantMetaList, TenantPlacementChange, TenantRateInput, TenantRemoval, TenantShardStats, TenantView } from './tenant-types.js';
import type {
  CallOptions,
  IssuedToken,
  KeyRotation,
  PluginConfigInput,
  PluginDefinition,
  PluginInfo,
  PluginReplayInput,
  PluginTestResult,
  QueueStatus,
  TokenInfo,
  TokenIssueInput,
  TokenRefreshOptions,
} from './types.js';

const pluginPath = (name: string): string => `/v1/plugins/${seg(name)}`;
const tenantPath = (tenant: string): string => `/v1/tenants/${seg(tenant)}`;

export abstract class ClientAdmin extends ClientBase {
  // ---- tokens (a `token.admin` token) ----

  /** Tokens in the ledger (others' tenants are left out). */
  async tokens(call?: CallOptions): Promise<TokenInfo[]> {
    return (await this.read<{ items: TokenInfo[] }>('/v1/tokens', undefined, call)).items;
  }

  /** One recorded token (its value is never in the ledger). */
  token(jti: string, call?: CallOptions): Promise<TokenInfo> {
    return this.read<TokenInfo>(`/v1/tokens/${seg(jti)}`, undefined, call);
  }

  issueToken(input: TokenIssueInput): Promise<IssuedToken> {
    const { signal: _s, timeoutMs: _t, ...fields } = input;
    return this.send('/v1/tokens', fields, input);
  }

  revokeToken(jti: string, reason?: string, call?: CallOptions): Promise<TokenInfo> {
    return this.send(`/v1/tokens/${seg(jti)}/revoke`, { reason }, call);
  }

  refreshToken(jti: string, options: TokenRefreshOptions = {}): Promise<IssuedToken> {
    return this.send(`/v1/tokens/${seg(jti)}/refresh`, { expirationSecs: options.expirationSecs, writeLimit: options.writeLimit }, options);
  }

  /** Replaces the server's signing keys: every token (this one too) stops working. */
  rotateSigningKeys(call?: CallOptions): Promise<KeyRotation> {
    return this.send('/v1/tokens/rotate-keys', {}, call);
  }

  // ---- plugins and the delivery queue (a `plugin.admin` token; the queue needs a server administrator) ----

  /** Configured plugins with their queue counts and lag. */
  async plugins(call?: CallOptions): Promise<PluginInfo[]> {
    return (await this.read<{ items: PluginInfo[] }>('/v1/plugins', undefined, call)).items;
  }

  plugin(name: string, call?: CallOptions): Promise<PluginDefinition> {
    return this.read(pluginPath(name), undefined, call);
  }

  /**
   * Creates or replaces a plugin (the whole definition; the server fills defaults). An enabled
   * plugin is checked for connectivity first: refused with 503 `unavailable` and the reason.
   */
  configurePlugin(name: string, definition: PluginConfigInput, call?: CallOptions): Promise<PluginDefinition> {
    // Not retried: a 503 here is a refused connectivity check, and asking again only doubles the wait.
    return this.call({ method: 'PUT', path: pluginPath(name), body: definition, idempotent: false }, call);
  }

  /** Enables a plugin after a connectivity check (503 `unavailable` with the reason when it fails). */
  enablePlugin(name: string, call?: CallOptions): Promise<PluginDefinition> {
    return this.send(`${pluginPath(name)}/enable`, {}, call);
  }

  /** Disables a plugin: its jobs wait in the queue until it is enabled again. */
  disablePlugin(name: string, call?: CallOptions): Promise<PluginDefinition> {
    return this.send(`${pluginPath(name)}/disable`, {}, call);
  }

  /** Removes a disabled plugin and its jobs (an enabled one is refused). */
  removePlugin(name: string, call?: CallOptions): Promise<{ removed: string }> {
    return this.call({ method: 'DELETE', path: pluginPath(name), idempotent: false }, call);
  }

  /** Sends a synthetic event through the plugin now (not queued); a failure is `ok: false`, not a throw. */
  testPlugin(name: string, call?: CallOptions): Promise<PluginTestResult> {
    return this.send(`${pluginPath(name)}/test`, {}, call);
  }

  /** Queues the stored events of an aggregate type (or one aggregate) of this client's tenant again for one plugin. */
  replayPlugin(name: string, input: PluginReplayInput): Promise<{ queued: number }> {
    return this.send(`${pluginPath(name)}/replay`, { aggregateType: input.aggregateType, aggregateId: input.aggregateId, payloadMode: input.payloadMode }, input);
  }

  /** Queue counts per plugin and the jobs not yet done, with their last errors. */
  queue(call?: CallOptions): Promise<QueueStatus> {
    return this.read('/v1/queue', undefined, call);
  }

  /** Dead jobs (all, or the one of this event id) back to pending now. */
  retryQueue(eventId?: string, call?: CallOptions): Promise<{ retried: number; stillDead: number }> {
    return this.send('/v1/queue/retry', { eventId }, call);
  }

  /** Removes dead jobs (all, or one plugin's). */
  clearQueue(plugin?: string, call?: CallOptions): Promise<{ cleared: number }> {
    return this.send('/v1/queue/clear', { plugin }, call);
  }

  // ---- tenants (a `tenant.admin` token; changes need one valid for every tenant) ----

  /** Every tenant the token may see, with shard, usage, quota, write rate and plugin lag. */
  async tenants(call?: CallOptions): Promise<TenantView[]> {
    return (await this.read<{ items: TenantView[] }>('/v1/tenants', undefined, call)).items;
  }

  tenantView(tenant: string, call?: CallOptions): Promise<TenantView> {
    return this.read(tenantPath(tenant), undefined, call);
  }

  /** Tenants with an explicit shard, quota or write rate (optionally those on one shard). */
  tenantMeta(options: { shard?: string } & CallOptions = {}): Promise<TenantMetaList> {
    return this.read('/v1/tenant-meta', options.shard !== undefined ? { shard: options.shard } : undefined, options);
  }

  tenantStats(call?: CallOptions): Promise<TenantShardStats> {
    return this.read('/v1/tenant-meta/stats', undefined, call);
  }

  /** Pins the tenant to a shard (`shard-0003` or `3`); a tenant with data is moved (or refused 409 `tenant_not_empty`). */
  assignTenant(tenant: string, shard: string, call?: CallOptions): Promise<TenantPlacementChange> {
    return this.call({ method: 'PUT', path: `${tenantPath(tenant)}/shard`, body: { shard }, idempotent: true }, call);
  }

  unassignTenant(tenant: string, call?: CallOptions): Promise<TenantPlacementChange> {
    return this.call({ method: 'DELETE', path: `${tenantPath(tenant)}/shard`, idempotent: true }, call);
  }

  setTenantQuota(tenant: string, maxAggregates: number, call?: CallOptions): Promise<TenantMetaEntry> {
    return this.call({ method: 'PUT', path: `${tenantPath(tenant)}/quota`, body: { maxAggregates }, idempotent: true }, call);
  }

  clearTenantQuota(tenant: string, call?: CallOptions): Promise<{ tenant: string; cleared: boolean }> {
    return this.call({ method: 'DELETE', path: `${tenantPath(tenant)}/quota`, idempotent: true }, call);
  }

  recalcTenantQuota(tenant: string, call?: CallOptions): Promise<{ tenant: string; count: number }> {
    return this.send(`${tenantPath(tenant)}/quota/recalc`, {}, call);
  }

  setTenantLimit(tenant: string, rate: TenantRateInput, call?: CallOptions): Promise<TenantMetaEntry> {
    return this.call({ method: 'PUT', path: `${tenantPath(tenant)}/limit`, body: { writesPerSec: rate.writesPerSec, burst: rate.burst }, idempotent: true }, call);
  }

  clearTenantLimit(tenant: string, call?: CallOptions): Promise<{ tenant: string; cleared: boolean }> {
    return this.call({ method: 'DELETE', path: `${tenantPath(tenant)}/limit`, idempotent: true }, call);
  }

  /**
   * The tenant's every aggregate with its whole history (`GET /v1/tenants/{t}/export`), streamed as
   * NDJSON, one event record per line with hash and merkle_root: pipe `body` to a file that
   * `importTenant`, `POST /v1/import` or `dbx tenant check` reads. The bytes are the server's.
   */
  exportTenant(tenant: string): Promise<OpenedStream> {
    return this.opener().open(`${tenantPath(tenant)}/export`, {}, 'application/x-ndjson');
  }

  /**
   * Loads a tenant export (NDJSON lines as `GET /v1/tenants/{t}/export` streams them) into an empty
   * tenant; every hash and root is recomputed and compared. `resume`: re-run after a failed import.
   */
  importTenant(tenant: string, lines: string | AsyncIterable<string | Uint8Array>, options: { resume?: boolean } & CallOptions = {}): Promise<TenantImportSummary> {
    return this.upload(`${tenantPath(tenant)}/import`, options.resume ? { resume: true } : undefined, lines, options);
  }

  /** Removes every data range of the tenant, its assignment, quota and limit (`force`: even with undelivered plugin jobs). */
  removeTenant(tenant: string, options: { force?: boolean } & CallOptions = {}): Promise<TenantRemoval> {
    return this.call({ method: 'DELETE', path: tenantPath(tenant), ...(options.force ? { query: { force: true } } : {}), idempotent: true }, options);
  }
}
