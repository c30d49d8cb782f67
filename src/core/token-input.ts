/**
 * What a caller may ask of a new or refreshed token, as data: the one validation behind both
 * `POST /v1/tokens` (coordinator/routes-tokens.ts) and `dbx token generate|refresh`, so the CLI
 * never issues a token the API would refuse (an empty group, a tenant id outside DESIGN §3's
 * rules, a lifetime whose expiry is not a date).
 */
import { z } from 'zod';
import { isActionPattern } from './tokens.js';
import { tenantSchema } from './validation.js';

const name = z.string().min(1).max(128);
export const tokenActionSchema = z.string().refine(isActionPattern, 'must be resource.verb (e.g. aggregate.read, aggregate.*), replicate or *');
const resourceSchema = z.string().min(1).max(256).regex(/^[A-Za-z0-9_*?.-]+(\/[A-Za-z0-9_*?-]+)?$/, 'must be <type> or <type>/<id>, with * or ? wildcards');
/** Seconds; 0 = never. At most 100 years: every expiry stays a real date. */
export const TOKEN_LIFETIME_SECS_MAX = 100 * 365 * 86_400;
const lifetime = z.number().int().min(0).max(TOKEN_LIFETIME_SECS_MAX);
const writeLimit = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const tokenIssueSchema = z.strictObject({
  group: name,
  user: name,
  subject: name.optional(),
  actions: z.array(tokenActionSchema).min(1).max(64),
  resources: z.array(resourceSchema).max(256).optional(),
  tenants: z.array(z.union([z.literal('*'), tenantSchema])).max(1024).optional(),
  /** Seconds; 0 = never; default `[auth] default_ttl_secs`. */
  expiration_secs: lifetime.optional(),
  write_limit: writeLimit.optional(),
  keep_alive: z.boolean().optional(),
});
export type TokenIssueBody = z.infer<typeof tokenIssueSchema>;

export const tokenRefreshSchema = z.strictObject({ expiration_secs: lifetime.optional(), write_limit: writeLimit.optional() });
