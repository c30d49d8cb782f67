/**
 * Request authentication and authorisation (DESIGN §7). A token's signature is checked once and
 * the claims cached (bounded), so an Ed25519 verify (~100 µs in JS) is not paid per request; the
 * time checks (exp/nbf) still run on every request because they are cheap and change over time.
 */
import {
  DbxError,
  allowsAction,
  allowsResource,
  allowsTenant,
  checkClaims,
  decodePublicKey,
  verifySignature,
  type Config,
  type IssuedBy,
  type TokenClaims,
} from '../core/index.js';

export interface Principal {
  claims: TokenClaims;
  tenant: string;
}

export class Authenticator {
  private readonly publicKey: Uint8Array;
  private readonly cache = new Map<string, TokenClaims>();

  constructor(private readonly auth: Config['auth']) {
    this.publicKey = decodePublicKey(auth.public_key);
  }

  authenticate(authorization: string | undefined): TokenClaims {
    if (!authorization) throw new DbxError('unauthorized', 'missing Authorization: Bearer <token> header');
    const match = /^Bearer\s+(\S+)$/i.exec(authorization);
    if (!match) throw new DbxError('unauthorized', 'Authorization header must be "Bearer <token>"');
    const token = match[1] as string;
    let claims = this.cache.get(token);
    if (!claims) {
      claims = verifySignature(token, this.publicKey);
      if (this.auth.verified_cache_max > 0) {
        if (this.cache.size >= this.auth.verified_cache_max) {
          const oldest = this.cache.keys().next();
          if (!oldest.done) this.cache.delete(oldest.value);
        }
        this.cache.set(token, claims);
      }
    }
    checkClaims(claims, this.auth);
    return claims;
  }
}

export function authorize(principal: Principal, action: string, resource?: { type: string; id?: string }): void {
  const { claims, tenant } = principal;
  if (!allowsTenant(claims, tenant)) throw new DbxError('forbidden', `token is not valid for tenant '${tenant}'`);
  if (!allowsAction(claims, action)) throw new DbxError('forbidden', `token lacks the '${action}' action`);
  if (resource && !allowsResource(claims, resource.type, resource.id)) {
    throw new DbxError('forbidden', `token does not cover ${resource.type}${resource.id ? `/${resource.id}` : ''}`);
  }
}

/** Writes are recorded with who made them; a token without group and user cannot write. */
export function issuerOf(principal: Principal): IssuedBy {
  const { group, user } = principal.claims;
  if (!group || !user) throw new DbxError('forbidden', 'writes need a token with group and user claims');
  return { group, user };
}
