/**
 * Request authentication and authorisation (DESIGN §7). A token's signature is checked once and
 * the claims cached (bounded), so an Ed25519 verify (~100 µs in JS) is not paid per request. What
 * can change while a token is cached is checked on every request: the time (exp/nbf) and the
 * ledger's revocation list (a plain LMDB read), so the cache never outlives a revocation.
 */
import {
  DbxError,
  allowsAction,
  allowsResource,
  allowsTenant,
  checkClaims,
  decodePublicKey,
  evictOldest,
  verifySignature,
  type Config,
  type IssuedBy,
  type TokenClaims,
} from '../core/index.js';
import type { TokenLedger } from './token-ledger.js';

export interface Principal {
  claims: TokenClaims;
  tenant: string;
}

export class Authenticator {
  private publicKey: Uint8Array;
  /** The key string `publicKey` was decoded from: a key rotation changes `auth` in place. */
  private publicKeyText: string;
  private readonly cache = new Map<string, TokenClaims>();

  constructor(
    private readonly auth: Config['auth'],
    private readonly ledger?: TokenLedger,
  ) {
    this.publicKeyText = auth.public_key;
    this.publicKey = decodePublicKey(auth.public_key);
  }

  authenticate(authorization: string | undefined): TokenClaims {
    if (!authorization) throw new DbxError('unauthorized', 'missing Authorization: Bearer <token> header');
    const match = /^Bearer\s+(\S+)$/i.exec(authorization);
    if (!match) throw new DbxError('unauthorized', 'Authorization header must be "Bearer <token>"');
    const token = match[1] as string;
    if (this.auth.public_key !== this.publicKeyText) this.keysChanged();
    let claims = this.cache.get(token);
    if (!claims) {
      claims = verifySignature(token, this.publicKey);
      if (this.auth.verified_cache_max > 0) {
        this.cache.set(token, claims);
        evictOldest(this.cache, this.auth.verified_cache_max);
      }
    }
    checkClaims(claims, this.auth);
    if (this.ledger?.isRevoked(claims.jti)) throw new DbxError('unauthorized', 'token has been revoked');
    return claims;
  }

  /** Forget every verified token (after a key rotation or a revocation made here). */
  keysChanged(): void {
    this.publicKeyText = this.auth.public_key;
    this.publicKey = decodePublicKey(this.auth.public_key);
    this.cache.clear();
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
