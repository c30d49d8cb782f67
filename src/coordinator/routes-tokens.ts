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
  allowsAction,
  allowsResource,
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
import { issueRecorded, refreshToken, rotateSigningKeys } from './token-service.js';
import type { WriteAllowance } from './write-allowance.js';

const issueBody = tokenIssueSchema;
const refreshBody = tokenRefreshSchema;
const revokeBody = z.strictObject({ reason: z.string().max(512).optional() });
const jtiParams = z.strictObject({ jti: z.string().min(1).max(128).regex(/^[A-Za-z0-9_-]+$/, 'jti may only contain letters, numbers, underscores, or hyphens') });

/** A record's tenants all lie inside the administrator's (an empty list means `default`). */
function withinScope(admin: TokenClaims, record: Pick<TokenRecord, 'tenants'>): boolean {
  if (isServerAdmin(admin)) return true;
  const tenants = record.tenants.length ? record.tenants : ['default'];
  return tenants.every((t) => t !== '*' && allowsTenant(admin, t));
}

function checkGrant(admin: TokenClaims, input: z.infer<typeof issueBody>): void {
  if (isServerAdmin(admin)) return;
  if (!input.tenants?.length) throw new DbxError('forbidden', 'name the tenants the token is for: this token administers only its own tenants');
  for (const tenant of input.tenants) {
    if (tenant === '*' || !allowsTenant(admin, tenant)) throw new DbxError('forbidden', `this token cannot grant tenant '${tenant}'`);
  }
  for (const action of input.actions) {
    if (!allowsAction(admin, action)) throw new DbxError('forbidden', `this token cannot grant the '${action}' action it does not hold`);
  }
  for (const resource of input.resources ?? ['*']) {
    const [type, id] = resource.split('/') as [string, string | undefined];
    if (!allowsResource(admin, type, id)) throw new DbxError('forbidden', `this token cannot grant resource '${resource}'`);
  }
  if (admin.limits.write_events !== null && admin.limits.write_events !== undefined) {
    throw new DbxError('forbidden', 'a token with a write limit cannot issue tokens');
  }
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
      handler: async ({ body, principal }) => {
        checkGrant(principal.claims, body);
        const input: IssueInput = {
          group: body.group,
          user: body.user,
          ...(body.subject !== undefined ? { subject: body.subject } : {}),
          actions: body.actions,
          resources: body.resources ?? [],
          tenants: body.tenants ?? [],
          issued_by: `${principal.claims.group}:${principal.claims.user}`,
          ...(body.expiration_secs !== undefined ? { ttl_secs: body.expiration_secs } : {}),
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
        visible(principal.claims, params.jti);
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
      handler: async ({ params, body, principal }) => {
        const current = visible(principal.claims, params.jti);
        // A refresh never adds writes: what the old token had left, counted live.
        const left = body.write_limit ?? current.writes_remaining;
        return refreshToken(config.auth, ledger, params.jti, {
          ...(body.expiration_secs !== undefined ? { expiration_secs: body.expiration_secs } : {}),
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
