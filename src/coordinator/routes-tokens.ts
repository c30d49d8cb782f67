/**
 * `/v1/tokens…` (issue 10): the token ledger over HTTP for a token holding `token.admin`.
 *
 * An administrator who is not a server administrator (DESIGN §7: `*` for every tenant) can only
 * see and manage tokens inside its own tenants, and can only grant what it holds itself: a
 * `token.admin` for tenant A must never mint a token for tenant B or one with more actions.
 */
import { z } from 'zod';
import {
  DbxError,
  coversAction,
  coversResource,
  allowsTenant,
  tokenIssueSchema,
  tokenRefreshSchema,
  type Config,
  type IssueInput,
  type TokenClaims,
} from '../core/index.js';
import type { Authenticator } from './auth.js';
import * as responses from './response-schemas.js';
import { defineRoute, type RouteSpec } from './route-spec.js';
import { isServerAdmin } from './routes-system.js';
import type { TokenLedger, TokenRecord, TokenView } from './token-ledger.js';
import { issueRecorded, refreshLifetime, refreshToken, rotateSigningKeys } from './token-service.js';
import type { WriteAllowance } from './write-allowance.js';

const issueBody = tokenIssueSchema;
const refreshBody = tokenRefreshSchema;
const revokeBody = z.strictObject({ reason: z.string().max(512).optional() });
const jtiParams = z.strictObject({ jti: z.string().min(1).max(128).regex(/^[A-Za-z0-9_-]+$/, 'jti may only contain letters, numbers, underscores, or hyphens') });

/** Whether a token's actions include `*` (with no tenants such a token serves every tenant, DESIGN §7). */
function holdsEverything(actions: readonly string[]): boolean {
  return actions.some((a) => a === '*' || a === '*.*');
}

/**
 * A record's tenants all lie inside the administrator's. An empty list means `default`, except
 * for a `*` token, which then serves every tenant (allowsTenant): no tenant's administrator may see
 * or touch that one.
 */
function withinScope(admin: TokenClaims, record: Pick<TokenRecord, 'tenants' | 'actions'>): boolean {
  if (isServerAdmin(admin)) return true;
  if (record.tenants.length === 0 && holdsEverything(record.actions)) return false;
  const tenants = record.tenants.length ? record.tenants : ['default'];
  return tenants.every((t) => t !== '*' && allowsTenant(admin, t));
}

/** What a grant gives: tenants, actions, resources and lifetime, as issued or as recorded. */
interface Grant {
  tenants: readonly string[];
  actions: readonly string[];
  resources: readonly string[];
  /** Expiry in seconds since the epoch; null: never (also for keep-alive tokens). */
  expiresAt: number | null;
}

/**
 * Why `admin` may not hand out `grant` (issue, or refresh, or revoke, which act on what the token
 * grants), or undefined when it may. Only a server administrator grants without bounds; anyone
 * else grants only what it holds: its tenants, actions and resources, no longer than its own token
 * lives, and not at all while its own writes are limited.
 */
function grantProblem(admin: TokenClaims, grant: Grant): string | undefined {
  if (isServerAdmin(admin)) return undefined;
  if (admin.limits.write_events !== null && admin.limits.write_events !== undefined) return 'a token with a write limit cannot issue or manage tokens';
  if (grant.tenants.length === 0) return 'name the tenants the token is for: this token administers only its own tenants';
  for (const tenant of grant.tenants) {
    if (tenant === '*' || !allowsTenant(admin, tenant)) return `this token cannot grant tenant '${tenant}'`;
  }
  // Patterns are compared as patterns: a grant must name only what a held pattern covers (an
  // admin of `order/o1` granting `order`, or of `order/o?` granting `order/o*`, is refused).
  for (const action of grant.actions) {
    if (!coversAction(admin, action)) return `this token cannot grant the '${action}' action it does not hold`;
  }
  for (const resource of grant.resources.length ? grant.resources : ['*']) {
    if (!coversResource(admin, resource)) return `this token cannot grant resource '${resource}': it covers aggregates this token may not reach`;
  }
  const adminExpires = admin.exp !== undefined && !admin.limits.keep_alive ? admin.exp : null;
  if (adminExpires !== null && (grant.expiresAt === null || grant.expiresAt > adminExpires)) {
    return `this token expires at ${new Date(adminExpires * 1000).toISOString()} and cannot grant a token that outlives it (give expiration_secs of at most ${Math.max(0, adminExpires - Math.floor(Date.now() / 1000))}, without keep_alive)`;
  }
  return undefined;
}

/**
 * The lifetime a grant gets when the caller named none: the default (`[auth] default_ttl_secs`,
 * or for a refresh the old token's), cut to what is left of the caller's own token when that
 * expires sooner, so a tenant administrator's plain "issue" keeps working. A lifetime the caller
 * named is taken as given (and refused by grantProblem when it outlives the caller).
 */
function defaultLifetime(admin: TokenClaims, fallbackSecs: number): number {
  if (isServerAdmin(admin) || admin.exp === undefined || admin.limits.keep_alive) return fallbackSecs;
  const left = Math.max(1, admin.exp - Math.floor(Date.now() / 1000));
  return fallbackSecs > 0 ? Math.min(fallbackSecs, left) : left;
}

function refuseGrant(admin: TokenClaims, grant: Grant): void {
  const problem = grantProblem(admin, grant);
  if (problem) throw new DbxError('forbidden', problem);
}

/** The expiry a lifetime gives from now (0: never; absent: the default TTL), in epoch seconds. */
function expiryOf(auth: Config['auth'], lifetimeSecs: number | undefined, keepAlive: boolean | undefined): number | null {
  if (keepAlive) return null;
  const ttl = lifetimeSecs ?? auth.default_ttl_secs;
  return ttl > 0 ? Math.floor(Date.now() / 1000) + ttl : null;
}

/** A recorded token's grant: an empty tenant list is `default` (withinScope keeps `*` tokens out). */
function recordedGrant(record: TokenRecord, expiresAt: number | null): Grant {
  return {
    tenants: record.tenants.length ? record.tenants : ['default'],
    actions: record.actions.length ? record.actions : ['*'],
    resources: record.resources,
    expiresAt,
  };
}

/** An answer carrying a token value is never cached (RFC 6749 §5.1). */
function noStore(reply: { header(name: string, value: string): unknown }): void {
  reply.header('cache-control', 'no-store');
}

export function tokenRoutes(deps: { dataDir: string; config: Config; ledger: TokenLedger; auth: Authenticator; allowance?: WriteAllowance }): RouteSpec[] {
  const { ledger, config } = deps;
  /** The ledger's view with this process's live write count (the ledger's is written just after). */
  const live = (view: TokenView): TokenView => {
    const accepted = deps.allowance?.acceptedOf(view.jti);
    if (accepted === undefined || view.limits.write_events === null) return view;
    return { ...view, writes_used: accepted, writes_remaining: Math.max(0, view.limits.write_events - accepted) };
  };
  const visible = (admin: TokenClaims, jti: string): TokenView => {
    const record = ledger.get(jti);
    if (!record || !withinScope(admin, record)) throw new DbxError('not_found', `token ${jti} not found`);
    return live(ledger.view(record));
  };
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/tokens',
      operationId: 'listTokens',
      response: responses.TokenList,
      summary: 'List recorded tokens: status, expiry, remaining writes (never a token value)',
      action: 'token.admin',
      handler: ({ principal }) => ({ items: ledger.list().filter((r) => withinScope(principal.claims, r)).map(live) }),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/tokens',
      operationId: 'issueToken',
      response: responses.IssuedToken,
      summary: 'Issue a token (recorded in the ledger); only grants the caller holds',
      action: 'token.admin',
      status: 201,
      body: issueBody,
      handler: async ({ body, principal, reply }) => {
        noStore(reply);
        const lifetime = body.expiration_secs ?? defaultLifetime(principal.claims, config.auth.default_ttl_secs);
        refuseGrant(principal.claims, {
          tenants: body.tenants ?? [],
          actions: body.actions,
          resources: body.resources ?? [],
          expiresAt: expiryOf(config.auth, lifetime, body.keep_alive),
        });
        const input: IssueInput = {
          group: body.group,
          user: body.user,
          ...(body.subject !== undefined ? { subject: body.subject } : {}),
          actions: body.actions,
          resources: body.resources ?? [],
          tenants: body.tenants ?? [],
          issued_by: `${principal.claims.group}:${principal.claims.user}`,
          ttl_secs: lifetime,
          ...(body.write_limit !== undefined ? { write_events: body.write_limit } : {}),
          ...(body.keep_alive !== undefined ? { keep_alive: body.keep_alive } : {}),
        };
        return issueRecorded(config.auth, ledger, input);
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/tokens/:jti',
      operationId: 'getToken',
      response: responses.TokenView,
      errors: [404],
      summary: 'One recorded token',
      action: 'token.admin',
      params: jtiParams,
      handler: ({ params, principal }) => visible(principal.claims, params.jti),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/tokens/:jti/revoke',
      operationId: 'revokeToken',
      response: responses.TokenView,
      errors: [404],
      summary: 'Revoke a token: refused on every request from now on',
      action: 'token.admin',
      params: jtiParams,
      body: revokeBody.optional().transform((b) => b ?? {}),
      handler: async ({ params, body, principal }) => {
        const current = visible(principal.claims, params.jti);
        // Revoking is managing: only an administrator who could have issued the token may end it.
        refuseGrant(principal.claims, recordedGrant(current, current.expires_at === null || current.limits.keep_alive ? null : Math.floor(Date.parse(current.expires_at) / 1000)));
        const record = await ledger.revoke(params.jti, body.reason ?? null);
        return ledger.view(record);
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/tokens/:jti/refresh',
      operationId: 'refreshToken',
      response: responses.IssuedToken,
      errors: [404],
      summary: 'Replace a token with a new one of the same grants; the old one stops working',
      action: 'token.admin',
      status: 201,
      params: jtiParams,
      body: refreshBody.optional().transform((b) => b ?? {}),
      handler: async ({ params, body, principal, reply }) => {
        noStore(reply);
        const current = visible(principal.claims, params.jti);
        const lifetime = body.expiration_secs ?? defaultLifetime(principal.claims, refreshLifetime(config.auth, current));
        // The replacement is a new grant of the old token's tenants, actions and resources, with
        // its new lifetime: only an administrator who could issue that may refresh it.
        refuseGrant(principal.claims, recordedGrant(current, expiryOf(config.auth, lifetime, current.limits.keep_alive)));
        // A refresh never adds writes: what the old token had left, counted live here (the ledger's
        // record may lag the allowance); write_limit may only lower it. refreshToken clamps again.
        const left = current.writes_remaining === null ? (body.write_limit ?? null) : Math.min(body.write_limit ?? current.writes_remaining, current.writes_remaining);
        await deps.allowance?.settle(current.jti);
        return refreshToken(config.auth, ledger, params.jti, {
          expiration_secs: lifetime,
          ...(left !== null ? { write_limit: left } : {}),
        });
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/tokens/rotate-keys',
      operationId: 'rotateSigningKeys',
      response: responses.KeyRotation,
      summary: 'Replace the signing key pair (server administrators): every token is revoked and cli.token re-issued',
      action: 'token.admin',
      handler: async ({ principal }) => {
        if (!isServerAdmin(principal.claims)) throw new DbxError('forbidden', 'rotating the signing keys needs a server administrator token (* for every tenant)');
        const result = await rotateSigningKeys(deps.dataDir, config.auth, ledger);
        deps.auth.keysChanged();
        return result;
      },
    }),
  ];
}
