/**
 * Request generator for the security fuzz (test/security-fuzz.test.ts). Every request is a pure
 * function of (seed, index, context): each index gets its own PRNG, so one failing request can be
 * replayed alone (`FUZZ_SEED=s FUZZ_ONLY=i`) and the run does not depend on answer order.
 *
 * Bodies are built as JSON *text* from a small model (`Obj` keeps keys verbatim, so `__proto__` and
 * duplicate keys reach the wire; `Raw` carries literals JS cannot hold, like `1e999` or `-0`), so the
 * server sees exactly the hostile bytes, not what `JSON.stringify` of a JS object would make of them.
 *
 * One file on purpose (past the usual ~400 lines): the weights of every generator sit side by side,
 * and the mix they make together is what the run's coverage depends on.
 */

/** mulberry32: tiny, fast, and the same sequence everywhere, so a seed replays bit for bit. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)] as T;
  }
  weighted<T>(entries: readonly (readonly [number, T])[]): T {
    let roll = this.next() * entries.reduce((sum, [w]) => sum + w, 0);
    for (const [w, value] of entries) if ((roll -= w) < 0) return value;
    return (entries.at(-1) as readonly [number, T])[1];
  }
}

/** The PRNG seed of one request: a murmur3-style mix of the run seed and the index. */
export function requestSeed(seed: number, index: number): number {
  let h = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

// ---- JSON text model --------------------------------------------------------------------------

export class Raw {
  constructor(readonly text: string) {}
}
export class Obj {
  constructor(readonly entries: [string, J][] = []) {}
  get(key: string): J | undefined {
    return this.entries.find(([k]) => k === key)?.[1];
  }
  set(key: string, value: J): Obj {
    const at = this.entries.findIndex(([k]) => k === key);
    if (at >= 0) this.entries[at] = [key, value];
    else this.entries.push([key, value]);
    return this;
  }
}
export type J = null | boolean | number | string | J[] | Obj | Raw;

/** JSON text of a model value; lone surrogates come out as `\ud800` escapes (JSON.stringify does that). */
export function jsonText(value: J): string {
  if (value instanceof Raw) return value.text;
  if (value instanceof Obj) return `{${value.entries.map(([k, v]) => `${JSON.stringify(k)}:${jsonText(v)}`).join(',')}}`;
  if (Array.isArray(value)) return `[${value.map(jsonText).join(',')}]`;
  return JSON.stringify(value);
}

const obj = (record: Record<string, J | undefined>): Obj => new Obj(Object.entries(record).filter((e): e is [string, J] => e[1] !== undefined));

// ---- Hostile building blocks ------------------------------------------------------------------

/** Literals JS cannot keep: overflow, negative zero, beyond 2^53, absurd exponents. */
const RAW_NUMBERS = ['1e999', '-1e999', '1E400', '-0', '0e0', '1e308', '-1e308', '2e-400', '9007199254740993', '-9007199254740993', '123456789012345678901234567890', '0.1e1', '5e-324'];
export const NASTY_STRINGS = [
  '\ud800', '\udfff', 'a\ud83d', '\ude00b', '\u0000', 'a\u0000b', '', ' ', '\u202e\u2066', '\ufeff', '\uffff', '😀', 'é',
  '../../etc/passwd', '..', '%00', '%', '%2e%2e%2f', "'", '"', '\\', '${x}', '{{x}}', '<script>', "' OR 1=1 --", 'null', 'true', '0', '-1',
  '__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'a:b:c', 'a,b', '\r\n', '\t',
];
export const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', '__defineGetter__', 'hasOwnProperty', 'toString', 'valueOf', 'isPrototypeOf'];

/** A value whose keys try to reach Object.prototype (`polluted` is the canary the test checks). */
export function protoValue(rng: Rng): Obj {
  const canary = (): Obj => new Obj([['polluted', 'yes']]);
  return rng.pick([
    () => new Obj([['__proto__', canary()]]),
    () => new Obj([['constructor', new Obj([['prototype', canary()]])]]),
    () => new Obj([['prototype', canary()]]),
    () => new Obj([['__proto__', [canary()]]]),
    () => new Obj([['__proto__', new Obj([['__proto__', canary()]])]]),
    () => new Obj([[rng.pick(PROTO_KEYS), rng.pick<J>([1, 'x', null, [], canary()])]]),
  ])();
}

export function nastyScalar(rng: Rng): J {
  return rng.weighted<() => J>([
    [4, () => new Raw(rng.pick(RAW_NUMBERS))],
    [4, () => rng.pick(NASTY_STRINGS)],
    [2, () => rng.pick<J>([true, false, null, 0, -1, 1.5, 2 ** 53 + 1, Number.MAX_SAFE_INTEGER, 1e308, -1e-308])],
    [1, () => rng.pick(NASTY_STRINGS) + rng.pick(NASTY_STRINGS)],
  ])();
}

/** A nested value `depth` levels deep, as text (built iteratively, so any depth is cheap here). */
export function deepValue(rng: Rng, depth: number): Raw {
  const kind = rng.int(3);
  if (kind === 0) return new Raw('['.repeat(depth) + ']'.repeat(depth));
  if (kind === 1) return new Raw('{"a":'.repeat(depth) + '1' + '}'.repeat(depth));
  return new Raw('[{"a":'.repeat(depth / 2) + 'null' + '}]'.repeat(depth / 2));
}

const PAYLOAD_KEYS = ['name', 'age', 'score', 'tags', 'city', 'active', 'nested', 'a', 'b', 'note', 'zip', 'price'];

/** A well-formed, small payload (so valid writes reach the workers and the state code). */
export function payload(rng: Rng, depth = 0): Obj {
  const out = new Obj();
  const n = rng.int(depth === 0 ? 5 : 3);
  for (let i = 0; i < n; i++) out.set(rng.pick(PAYLOAD_KEYS), plainValue(rng, depth + 1));
  return out;
}

function plainValue(rng: Rng, depth: number): J {
  const roll = rng.int(depth > 2 ? 6 : 9);
  switch (roll) {
    case 0: return rng.int(200);
    case 1: return `v${rng.int(1000)}`;
    case 2: return rng.chance(0.5);
    case 3: return null;
    case 4: return rng.next() * 1000;
    case 5: return rng.pick(['Ada', 'Grace', 'Oslo', 'a@b.co', '2024-01-01T00:00:00Z', '12.50']);
    case 6: return [rng.int(9), `t${rng.int(9)}`];
    default: return payload(rng, depth);
  }
}

// ---- Names, ids, tokens -----------------------------------------------------------------------

export const TYPES = ['fz_order', 'fz_note', 'fz_person', 'fz_item'] as const;
export const SCHEMA_TYPES = ['fz_person', 'fz_s1', 'fz_s2'] as const;
export const EVENT_TYPES = ['created', 'updated', 'person_created', 'person_updated', 'noted', 'shipped'];
export const TENANTS = ['default', 'acme', 'fz-t2', 'DEFAULT', 'Acme'];
export const ID_POOL = 30;

export const idFor = (type: string, n: number): string => `${type.slice(3, 4)}${n}`;

/** Tokens the test mints against the server's key (and a few it cannot verify). */
export interface FuzzTokens {
  root: string;
  reader: string;
  acme: string;
  scoped: string;
  limited: string;
  expired: string;
  foreign: string;
  wrongAudience: string;
}

export interface FuzzContext {
  tokens: FuzzTokens;
  /** Event ids and list cursors the setup saw, picked by index (so a replay picks the same slot). */
  eventIds: string[];
  cursors: string[];
}

const b64url = (text: string): string => Buffer.from(text).toString('base64url');

/** Every Authorization header variant: absent, malformed, forged, expired, other tenant, valid. */
export function authorization(rng: Rng, tokens: FuzzTokens): string | undefined {
  const [header, claims] = tokens.root.split('.') as [string, string, string];
  return rng.weighted<() => string | undefined>([
    [3, () => undefined],
    [6, () => `Bearer ${tokens.root}`],
    [2, () => `Bearer ${rng.pick([tokens.reader, tokens.acme, tokens.scoped, tokens.limited, tokens.expired, tokens.foreign, tokens.wrongAudience])}`],
    [1, () => `Bearer ${tokens.root.slice(0, rng.int(tokens.root.length))}`],
    [1, () => `Bearer ${b64url('{"alg":"none","typ":"JWT"}')}.${claims}.`],
    [1, () => `Bearer ${b64url('{"alg":"HS256","typ":"JWT"}')}.${claims}.${b64url('x'.repeat(32))}`],
    [1, () => `Bearer ${header}.${flipClaims(rng, claims)}.${tokens.root.split('.')[2]}`],
    [1, () => `Bearer ${tokens.root}.${claims}`],
    [1, () => rng.pick(['Bearer', 'Bearer ', 'bearer ' + tokens.root, 'BEARER  ' + tokens.root, 'Basic YTpi', 'Token ' + tokens.root, `Bearer ${tokens.root} extra`, 'Bearer null', 'Bearer undefined', 'Bearer ' + 'A'.repeat(4000), 'Bearer ...', 'Bearer a.b.c', `Bearer ${b64url('null')}.${b64url('null')}.${b64url('x')}`, `Bearer ${b64url('[]')}.${b64url('{"__proto__":{"polluted":"yes"}}')}.AAAA`])],
  ])();
}

/** The root token's claims with one claim changed (the signature then no longer matches). */
function flipClaims(rng: Rng, part: string): string {
  const claims = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
  const key = rng.pick(['actions', 'tenants', 'exp', 'iss', 'aud', 'sub', 'group', 'resources', 'limits']);
  claims[key] = rng.pick<unknown>([['*'], ['other'], 0, 99999999999, 'x', null, {}, [null]]);
  return b64url(JSON.stringify(claims));
}

/** X-Tenant-Id values: valid ones, case variants, and junk the header layer may or may not carry. */
export function tenantHeader(rng: Rng): string | undefined {
  return rng.weighted<() => string | undefined>([
    [20, () => undefined],
    [4, () => rng.pick(TENANTS)],
    [1, () => rng.pick(['', ' ', 'a'.repeat(65), '-x', '_x', 'a b', 'a/b', '..', 'a:b', '*', '__proto__', 'constructor', 'é', '\u0000', 'a\u0000b', '%00', 'x'.repeat(300), 'default,acme'])],
  ])();
}

// ---- Query language fragments -----------------------------------------------------------------

const FILTER_FIELDS = [
  'name', 'age', 'score', 'tags', 'nested.a', 'payload.name', 'payload.age', 'extensions.@trace', 'metadata.note', 'metadata.issued_by.user',
  'aggregate_type', 'aggregateId', 'version', 'archived', 'created_at', 'updated_at', 'event_type', 'event_id', 'merkle_root', 'hash', 'note',
  '__proto__', '__proto__.polluted', 'constructor', 'constructor.prototype', 'toString', 'state.__proto__', 'a..b', '.a', 'a.', '$x', '_', 'tags.0', 'tags.-1', 'x'.repeat(200),
];
const FILTER_OPS = ['=', '!=', '>', '<', '>=', '<=', 'LIKE', 'NOT LIKE', 'IN', 'NOT IN', 'like', '==', '=>', '!'];

function filterValue(rng: Rng): string {
  return rng.weighted<() => string>([
    [3, () => `"${rng.pick(['Ada', 'v1', '', 'a\\"b', '%', '\\\\', 'é', '\u0000', '😀'])}"`],
    [2, () => `'${rng.pick(['Oslo', '', "it\\'s", 'x'.repeat(rng.int(300))])}'`],
    [3, () => rng.pick(['1', '-1', '0', '3.5', '1e999', '1.2.3', '-', '--1', '0x10', '9007199254740993', '-0', '1e-400'])],
    [1, () => rng.pick(['TRUE', 'false', 'NULL', 'null', 'bare_ident', 'AND', '"unterminated', "'open"])],
  ])();
}

function comparison(rng: Rng): string {
  const field = rng.pick(FILTER_FIELDS);
  const op = rng.pick(FILTER_OPS);
  if (op.endsWith('IN')) return `${field} ${op} [${Array.from({ length: rng.int(4) }, () => filterValue(rng)).join(rng.pick([', ', ',', ' '])) }${rng.chance(0.9) ? ']' : ''}`;
  if (op.endsWith('LIKE') || op === 'like') return `${field} ${op} "${rng.pick(['%a%', 'A_a', '*', '%', '%a%a%a%a%a%a%a%a%a%a%a%a%a%a%b', '_'.repeat(100), '\\%', '[a-z]+', '(.*)*'])}"`;
  return `${field} ${op} ${filterValue(rng)}`;
}

function filterExpr(rng: Rng, depth: number): string {
  if (depth > 3 || rng.chance(0.4)) return comparison(rng);
  return rng.weighted<() => string>([
    [3, () => `${filterExpr(rng, depth + 1)} ${rng.pick(['AND', 'OR', 'and', 'or', '&&', 'XOR'])} ${filterExpr(rng, depth + 1)}`],
    [1, () => `NOT ${filterExpr(rng, depth + 1)}`],
    [2, () => `(${filterExpr(rng, depth + 1)})`],
  ])();
}

/** Filter strings: grammar-shaped, junk, very long, and very deep (parens). */
export function filter(rng: Rng): string {
  return rng.weighted<() => string>([
    [10, () => filterExpr(rng, 0)],
    [2, () => randomText(rng, rng.int(40), '()[],=!<>\'"\\ %_*ANDORNOTINLIKE.@$0123456789ab')],
    [1, () => { const n = rng.pick([63, 64, 65, 200, 2000, 5000]); return '('.repeat(n) + 'a = 1' + ')'.repeat(rng.chance(0.8) ? n : n - 1); }],
    [1, () => { const n = rng.pick([63, 64, 65, 500]); return 'NOT '.repeat(n) + 'a = 1'; }],
    [1, () => Array.from({ length: rng.pick([50, 300, 700]) }, () => comparison(rng)).join(' AND ')],
    [1, () => rng.pick(['', ' ', 'a', 'a =', '= 1', '()', 'a = 1)', '(a = 1', 'a IN [', 'a IN ]', 'a = "x" extra', '\u0000', 'a = "\ud800"', 'a = 1 AND', 'a.b.c.d.e.f = 1'])],
  ])();
}

const SORT_FIELDS = ['aggregate_type', 'aggregatetype', 'aggregate_id', 'version', 'merkle_root', 'archived', 'event_type', 'created_at', 'event_id', 'hash', 'name', '', '__proto__', 'constructor', 'x'.repeat(100)];

export function sort(rng: Rng): string {
  if (rng.chance(0.1)) return randomText(rng, rng.int(30), 'abc_:,. ASCDESCasc\u0000');
  return Array.from({ length: rng.range(1, 4) }, () => rng.pick(SORT_FIELDS) + rng.pick(['', '', ':asc', ':desc', ':DESC', ':x', '::', ':asc:desc', ':'])).join(rng.pick([',', ',', ', ', ';']));
}

/** Cursors: real ones, edited ones, truncated, base64 junk, over-long, with NUL or lone surrogates. */
export function cursor(rng: Rng, ctx: FuzzContext): string {
  const real = ctx.cursors.length > 0 ? ctx.cursors[rng.int(ctx.cursors.length)] as string : 'a:fz_order:o1';
  const type = rng.pick(TYPES);
  const id = idFor(type, rng.int(ID_POOL));
  return rng.weighted<() => string>([
    [3, () => real],
    [2, () => real.slice(0, rng.int(real.length))],
    [3, () => `${rng.pick(['a', 'r', 'active', 'archived', 'x', ''])}:${type}:${id}${rng.chance(0.5) ? `:${rng.pick(['1', '0', '99999999999999999', '-1', 'x', ''])}` : ''}`],
    [2, () => Buffer.from(Array.from({ length: rng.int(60) }, () => rng.int(256))).toString(rng.pick(['base64', 'base64url', 'hex']))],
    [2, () => rng.pick([':', '::', ':::', 'a::', 'a:b', 'a:b:c:d:e', 'a:\u0000:x', `a:${'é'.repeat(500)}:x`, 'a:x:\ud800', `a:${'x'.repeat(510)}`, `a:${'x'.repeat(600)}:y`, 'a:__proto__:constructor', 'r:fz_order:' + 'z'.repeat(200)])],
  ])();
}

export function randomText(rng: Rng, length: number, alphabet?: string): string {
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet ? alphabet[rng.int(alphabet.length)] : String.fromCharCode(rng.chance(0.8) ? rng.range(32, 126) : rng.int(0x10000));
  return out;
}

/**
 * Percent-encodes any JS string, lone surrogates included: they go out as their WTF-8 bytes
 * (`%ED%A0%80`), which `encodeURIComponent` refuses to produce.
 */
export function pctEncode(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const next = text.charCodeAt(i + 1);
    if (code >= 0xd800 && code <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      out += encodeURIComponent(text.slice(i, i + 2));
      i++;
    } else if (code >= 0xd800 && code <= 0xdfff) {
      out += `%${(0xe0 | (code >> 12)).toString(16)}%${(0x80 | ((code >> 6) & 0x3f)).toString(16)}%${(0x80 | (code & 0x3f)).toString(16)}`.toUpperCase();
    } else {
      out += encodeURIComponent(text[i] as string);
    }
  }
  return out;
}

/** Path segments for ids and names: valid, too long, encoded separators, traversal, prototype names. */
export function segment(rng: Rng, valid: string): string {
  return rng.weighted<() => string>([
    [6, () => valid],
    [1, () => rng.pick(['a'.repeat(129), 'a'.repeat(65), 'a'.repeat(257), 'A1-_', 'UPPER', '0', '-', '_'])],
    [2, () => rng.pick(['%00', 'a%00b', '%2F', 'a%2Fb', '%2e%2e', '%2E', '%ZZ', '%', '%C0%AF', '%ED%A0%80', '%C3%A9', '%F0%9F%98%80', '%20', '+', '*', '%2A', '%3A', 'a%3Ab', '%5C'])],
    [1, () => rng.pick(['__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'valueOf'])],
    [1, () => rng.pick(['..', '.', '', 'a b', 'é', 'a\\b', 'a;b', 'a#b', 'a?b=1', '~', '\u0000'])],
  ])();
}

/** Whether `fetch` would send this path byte for byte (else it goes out over a raw socket). */
export function fetchKeepsPath(path: string): boolean {
  try {
    const url = new URL(path, 'http://127.0.0.1');
    return url.pathname + url.search === path && /^[\x21-\x7e]*$/.test(path);
  } catch {
    return false;
  }
}

/** Whether `fetch` accepts this header value unchanged (else raw socket). */
export function fetchKeepsHeader(value: string): boolean {
  return /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/.test(value);
}


// ---- Requests ---------------------------------------------------------------------------------

export interface FuzzRequest {
  index: number;
  /** Which generators built it, e.g. `mutate:write.patch+proto`. */
  label: string;
  method: string;
  /** The request target as sent (query included). */
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  /** Exact bytes for a raw socket: set when fetch could not send the request as built. */
  raw?: Buffer;
  /** Not valid HTTP/1.1: the server may close the socket without an answer. */
  malformedHttp: boolean;
  /** The X-Tenant-Id header as sent (the test lists every tenant a request may have written). */
  tenant: string | undefined;
}

interface Draft {
  label: string;
  method: string;
  path: string;
  query: [string, string][];
  body?: J | undefined;
  /** A body sent as is (bad JSON, NDJSON, bytes): wins over `body`. */
  bodyText?: string | Buffer | undefined;
  contentType?: string | undefined;
  headers: Record<string, string>;
}

const draft = (label: string, method: string, path: string, extra: Partial<Draft> = {}): Draft => ({ label, method, path, query: [], headers: {}, ...extra });

function target(rng: Rng): { type: string; id: string } {
  const type = rng.chance(0.95) ? rng.pick(TYPES) : rng.pick(['fz_new', 'fz_imp', 'other_type']);
  return { type, id: rng.chance(0.9) ? idFor(type, rng.int(ID_POOL)) : `r${rng.int(1_000_000)}` };
}

const maybe = <T>(rng: Rng, p: number, make: () => T): T | undefined => (rng.chance(p) ? make() : undefined);

function eventFields(rng: Rng, type: string): Record<string, J | undefined> {
  return {
    event_type: type === 'fz_person' && rng.chance(0.8) ? rng.pick(['person_created', 'person_updated']) : rng.pick(EVENT_TYPES),
    metadata: maybe(rng, 0.2, () => new Obj([['@trace', `t${rng.int(99)}`], ['@n', rng.int(9)]])),
    note: maybe(rng, 0.15, () => `note ${rng.int(99)}`),
    idempotency_key: maybe(rng, 0.15, () => `k${rng.int(40)}`),
  };
}

const PATCH_PATHS = ['/name', '/age', '/tags', '/tags/0', '/tags/-', '/nested', '/nested/a', '/x', '', '/', '/~0', '/~1', '/a~1b', '/0', '/name/first',
  '/__proto__', '/__proto__/polluted', '/constructor', '/constructor/prototype/polluted', '/toString', '/hasOwnProperty', '/valueOf', '/prototype'];

/** Names every object inherits: a patch must treat them as absent, never reach Object.prototype. */
const INHERITED_PATHS = ['/toString', '/valueOf', '/hasOwnProperty', '/constructor', '/__proto__', '/isPrototypeOf', '/propertyIsEnumerable', '/toLocaleString'];

function patchOps(rng: Rng): J[] {
  return Array.from({ length: rng.weighted([[3, 1], [1, 2], [1, 3]] as const) }, () => {
    const op = rng.pick(['add', 'replace', 'remove', 'test', 'move', 'copy']);
    const path = (): string => rng.pick(rng.chance(0.3) ? INHERITED_PATHS : PATCH_PATHS);
    const o = obj({ op, path: op === 'move' || op === 'copy' ? rng.pick(['/x', '/moved', '/name', '/tags/-']) : path() });
    if (op === 'add' || op === 'replace' || op === 'test') o.set('value', plainValue(rng, 1));
    if (op === 'move' || op === 'copy') o.set('from', path());
    return o;
  });
}

function batchItem(rng: Rng): Obj {
  const { type, id } = target(rng);
  const item = obj({ aggregate_type: type, aggregate_id: id, ...eventFields(rng, type), idempotency_key: undefined });
  if (rng.chance(0.25)) item.set('patch', patchOps(rng));
  else item.set('payload', payload(rng));
  return item;
}

function schemaBody(rng: Rng): Obj {
  return obj({
    column_types: maybe(rng, 0.6, () => obj({
      age: rng.pick<J>(['integer', obj({ type: 'integer', range: obj({ min: '0', max: '150' }) })]),
      name: rng.pick<J>(['text', obj({ type: 'text', length: obj({ max: 50 }), regex: rng.pick<J>(['^[A-Z]', ['a', '(a+)+$']]), must_match: maybe(rng, 0.3, () => payload(rng)) })]),
      active: 'boolean',
      price: maybe(rng, 0.3, () => 'decimal(8,2)'),
      nested: maybe(rng, 0.3, () => obj({ type: 'object', properties: obj({ a: 'integer' }) })),
    })),
    events: maybe(rng, 0.7, () => obj({ person_created: obj({}), person_updated: obj({ fields: maybe(rng, 0.3, () => ['name']) }), created: obj({}), updated: obj({}) })),
    snapshot_threshold: maybe(rng, 0.3, () => rng.pick<J>([0, 1, 2, 5, null])),
    hidden_fields: maybe(rng, 0.2, () => ['secret', 'nested.a']),
    field_locks: maybe(rng, 0.1, () => ['ssn']),
    hidden: maybe(rng, 0.05, () => rng.chance(0.5)),
    locked: maybe(rng, 0.05, () => rng.chance(0.5)),
  });
}

/** NDJSON lines shaped like exported event records (most do not continue any history: refusals). */
function importBody(rng: Rng): string {
  return Array.from({ length: rng.range(1, 3) }, (_, i) => {
    const type = rng.pick(['fz_imp', 'fz_order']);
    const record = obj({
      aggregate_type: type,
      aggregate_id: `i${rng.int(ID_POOL)}`,
      event_type: rng.pick(['created', 'aggregate_archived', 'aggregate_restored']),
      version: rng.chance(0.7) ? i + 1 : rng.int(5),
      payload: rng.chance(0.8) ? payload(rng) : patchOps(rng),
      extensions: obj({}),
      metadata: obj({
        event_id: `${rng.range(1, 9)}${String(rng.int(1e9)).padStart(9, '0')}`,
        created_at: '2026-01-01T00:00:00.000Z',
        issued_by: rng.chance(0.5) ? null : obj({ group: 'g', user: 'u' }),
      }),
    });
    if (rng.chance(0.2)) record.set('hash', 'ab'.repeat(32));
    return jsonText(rng.chance(0.15) ? mutateOnce(rng, record, false) : record);
  }).join(rng.pick(['\n', '\r\n', '\n\n'])) + (rng.chance(0.7) ? '\n' : '');
}

function writeDraft(rng: Rng): Draft {
  const { type, id } = target(rng);
  const agg = `/v1/aggregates/${type}/${id}`;
  const schema = rng.pick(SCHEMA_TYPES);
  return rng.weighted<() => Draft>([
    [5, () => draft('write.create', 'POST', agg, { body: obj({ ...eventFields(rng, type), payload: payload(rng) }) })],
    [8, () => draft('write.apply', 'POST', `${agg}/events`, { body: obj({ ...eventFields(rng, type), payload: payload(rng), expected_version: maybe(rng, 0.2, () => rng.int(8)) }) })],
    [3, () => draft('write.events', 'POST', '/v1/events', { body: obj({ aggregate_type: type, aggregate_id: id, ...eventFields(rng, type), payload: payload(rng) }) })],
    [5, () => draft('write.patch', 'POST', `${agg}/patch`, { body: obj({ ...eventFields(rng, type), patch: patchOps(rng), expected_version: maybe(rng, 0.1, () => rng.int(8)) }) })],
    [2, () => ((op) => draft(`write.${op}`, 'POST', `${agg}/${op}`, {
      body: maybe(rng, 0.6, () => obj({ comment: maybe(rng, 0.5, () => 'why'), note: maybe(rng, 0.2, () => 'n'), expected_version: maybe(rng, 0.1, () => rng.int(8)), idempotency_key: maybe(rng, 0.1, () => `k${rng.int(9)}`) })),
    }))(rng.pick(['archive', 'restore']))],
    [3, () => draft('write.batch', 'POST', '/v1/batch', { body: obj({ events: Array.from({ length: rng.range(1, 4) }, () => batchItem(rng)) }) })],
    [1, () => draft('write.snapshot', 'POST', `${agg}/snapshots`, { body: maybe(rng, 0.5, () => obj({ comment: 'snap' })) })],
    [1, () => draft('schema.put', 'PUT', `/v1/schemas/${schema}`, { body: schemaBody(rng), query: rng.chance(0.2) ? [['expected_version', String(rng.int(5))]] : [] })],
    [0.5, () => draft('schema.post', 'POST', '/v1/schemas', { body: schemaBody(rng).set('aggregate', schema) })],
    [0.3, () => draft('schema.delete', 'DELETE', `/v1/schemas/${rng.pick(['fz_s1', 'fz_s2'])}`)],
    [1, () => draft('schema.validate', 'POST', `/v1/schemas/${schema}/validate`, { body: obj({ event_type: rng.pick(EVENT_TYPES), payload: payload(rng) }) })],
    [1, () => draft('write.import', 'POST', '/v1/import', { bodyText: importBody(rng), contentType: 'application/x-ndjson', query: rng.chance(0.3) ? [['verify', rng.pick(['false', 'true', '0'])]] : [] })],
  ])();
}

const bool = (rng: Rng): string => rng.pick(['true', 'false', '1', '0']);
const take = (rng: Rng): string => (rng.chance(0.85) ? String(rng.int(25)) : rng.pick(['1000', '1001', '0', '999999999']));

function listQuery(rng: Rng, ctx: FuzzContext, events: boolean): [string, string][] {
  const q: [string, string][] = [];
  if (rng.chance(0.5)) q.push(['take', take(rng)]);
  if (rng.chance(0.25)) q.push(['cursor', cursor(rng, ctx)]);
  if (rng.chance(0.35)) q.push(['filter', filter(rng)]);
  if (rng.chance(0.25)) q.push(['sort', sort(rng)]);
  if (!events && rng.chance(0.3)) q.push([rng.pick(['include_archived', 'archived_only']), bool(rng)]);
  return q;
}

function readDraft(rng: Rng, ctx: FuzzContext): Draft {
  const { type, id } = target(rng);
  const agg = `/v1/aggregates/${type}/${id}`;
  const eventId = ctx.eventIds.length > 0 && rng.chance(0.8) ? (ctx.eventIds[rng.int(ctx.eventIds.length)] as string) : String(rng.int(1e9));
  const schema = rng.pick(SCHEMA_TYPES);
  return rng.weighted<() => Draft>([
    [5, () => draft('read.list', 'GET', '/v1/aggregates', { query: listQuery(rng, ctx, false) })],
    [4, () => draft('read.list_type', 'GET', `/v1/aggregates/${type}`, { query: listQuery(rng, ctx, false) })],
    [5, () => draft('read.get', 'GET', agg, { query: [...(rng.chance(0.4) ? [['version', String(rng.int(8))] as [string, string]] : []), ...(rng.chance(0.3) ? [['include_events', bool(rng)] as [string, string]] : [])] })],
    [3, () => draft('read.select', 'GET', `${agg}/select`, { query: [['fields', Array.from({ length: rng.range(1, 4) }, () => rng.pick([...PAYLOAD_KEYS, 'nested.a', 'tags.0', '__proto__', 'constructor', 'toString', 'a..b', '', ' '])).join(',')]] })],
    [4, () => draft('read.events', 'GET', `${agg}/events`, { query: listQuery(rng, ctx, true).filter(([k]) => k !== 'sort') })],
    [2, () => draft('read.verify', 'GET', `${agg}/verify`)],
    [2, () => draft('read.proof', 'GET', `${agg}/proof`, { query: rng.chance(0.5) ? [['version', String(rng.int(6))], ['size', String(rng.int(8))]] : [['from_size', String(rng.int(6))], ['to_size', String(rng.int(8))]] })],
    [1, () => draft('read.snapshots', 'GET', `${agg}/snapshots`)],
    [4, () => draft('read.all_events', 'GET', '/v1/events', { query: listQuery(rng, ctx, false) })],
    [2, () => draft('read.event', 'GET', `/v1/events/${eventId}`)],
    [1, () => draft('read.schemas', 'GET', '/v1/schemas', { query: rng.chance(0.5) ? [['take', String(rng.int(5))], ['cursor', rng.pick(['fz_a', 'fz_person', 'zz'])]] : [] })],
    [2, () => draft('read.schema', 'GET', rng.pick([`/v1/schemas/${schema}`, `/v1/schemas/${schema}/versions`, `/v1/schemas/${schema}/versions/${rng.int(4) + 1}`, `/v1/schemas/${schema}/json-schema`]))],
    [1, () => draft('read.system', 'GET', rng.pick(['/health', '/v1/status', '/metrics', '/health', '/v1/status']))],
    [0.1, () => draft('read.openapi', 'GET', '/openapi.json')],
  ])();
}

// ---- Mutations --------------------------------------------------------------------------------

/** Walks into a random nested object of a body (so a mutation may land at any level). */
function randomObj(rng: Rng, root: Obj): Obj {
  let at = root;
  for (let i = 0; i < 4 && rng.chance(0.5); i++) {
    const inner = at.entries.map(([, v]) => v).flatMap((v) => (v instanceof Obj ? [v] : Array.isArray(v) ? v.filter((x): x is Obj => x instanceof Obj) : []));
    if (inner.length === 0) break;
    at = rng.pick(inner);
  }
  return at;
}

function protoEverywhere(rng: Rng, value: J): void {
  if (value instanceof Obj) {
    for (const [, v] of value.entries) protoEverywhere(rng, v);
    value.entries.push(...protoValue(rng).entries);
  } else if (Array.isArray(value)) {
    for (const v of value) protoEverywhere(rng, v);
  }
}

const HEAVY_SIZES = [200_000, 262_100, 262_200, 300_000, 700_000, 1_048_000, 1_100_000];

/** One edit of a body; `heavy` allows the 5,000-deep and near-body-limit ones. */
function mutateOnce(rng: Rng, body: J, heavy: boolean): J {
  if (!(body instanceof Obj)) return rng.chance(0.5) ? new Obj([['value', body]]) : nastyScalar(rng);
  const at = randomObj(rng, body);
  const key = at.entries.length > 0 && rng.chance(0.7) ? (rng.pick(at.entries)[0]) : rng.pick([...PAYLOAD_KEYS, 'event_type', 'payload', 'patch', 'events', 'metadata']);
  const kinds: [number, () => J][] = [
    [3, () => { at.entries.splice(at.entries.findIndex(([k]) => k === key), 1); return body; }],
    [5, () => { at.set(key, nastyScalar(rng)); return body; }],
    [3, () => { at.set(key, rng.pick<J>([[], new Obj(), 'str', 1, true, null, [null], [[]], new Obj([['a', new Obj()]])])); return body; }],
    [3, () => { at.entries.push([rng.pick(['extra', 'colour', 'aggregate_type', 'tenant', 'version', 'hash', 'Event_Type', 'EVENT_TYPE', 'event_type ', '', ' ', '@x']), nastyScalar(rng)]); return body; }],
    [4, () => { at.entries.push(...protoValue(rng).entries); return body; }],
    [1, () => { protoEverywhere(rng, body); return body; }],
    [2, () => { at.entries.push([key, nastyScalar(rng)]); return body; }],
    [2, () => { at.entries.push([rng.pick(NASTY_STRINGS), plainValue(rng, 1)]); return body; }],
    [1, () => (rng.chance(0.5) ? [body] : nastyScalar(rng))],
    [1, () => { at.set(key, Array.from({ length: rng.pick([10, 1001, 1500]) }, () => rng.int(9))); return body; }],
  ];
  // Heavy edits cost megabytes or deep parses: the caller keeps them to a few hundred per run.
  const heavyKinds: [number, () => J][] = [
    [4, () => { at.set(key, deepValue(rng, rng.pick([65, 1001, 3000, 5000]))); return body; }],
    [2, () => { at.set(rng.chance(0.5) ? key : rng.pick(['note', 'idempotency_key', 'comment', '@big', 'name']), 'x'.repeat(rng.pick(HEAVY_SIZES))); return body; }],
    [1, () => { at.set(key, new Raw(`[${'0,'.repeat(rng.pick([99_999, 100_001, 150_000]))}0]`)); return body; }],
  ];
  return rng.weighted(heavy ? heavyKinds : kinds)();
}

function mutateQuery(rng: Rng, q: [string, string][], ctx: FuzzContext): [string, string][] {
  const out = [...q];
  for (let n = rng.range(1, 3); n > 0; n--) {
    rng.weighted<() => void>([
      [3, () => out.push([rng.pick(['take', 'cursor', 'filter', 'sort', 'include_archived', 'archived_only', 'version', 'fields', 'size', 'from_size', 'to_size', 'include_events', 'verify', 'expected_version']), rng.pick([nastyScalarText(rng), filter(rng), cursor(rng, ctx), sort(rng), take(rng)])])],
      [2, () => out.push([rng.pick([...PROTO_KEYS, 'unknown', '', 'take[]', 'filter[a]', 'TAKE', 'a.b']), nastyScalarText(rng)])],
      [2, () => { if (out.length > 0) out.push(rng.pick(out)); }],
      [3, () => { const at = rng.int(Math.max(out.length, 1)); if (out[at]) out[at] = [out[at][0], nastyScalarText(rng)]; }],
      [1, () => out.push(['filter', 'a'.repeat(rng.pick([4096, 4097, 9000]))])],
    ])();
  }
  return out;
}

function nastyScalarText(rng: Rng): string {
  const v = nastyScalar(rng);
  return typeof v === 'string' ? v : jsonText(v);
}

// ---- Transport-level junk ---------------------------------------------------------------------

const BAD_JSON = [
  '{', '{"a":', '[', '{"event_type":"created",}', "{'event_type':'created'}", 'NaN', 'undefined', '{"a":NaN}', '{"a":Infinity}', '{"a":01}', '{"a":.5}',
  '\ufeff{"event_type":"created"}', '{"event_type":"created"}garbage', '{"event_type":"created"}{"x":1}', 'null', 'true', '123', '"str"', '[]', '{}', ' ', '\n',
  '{"event_type":"created","event_type":"updated"}', '{"event_type":"\\u0000"}', '{"event_type":"created","payload":{"a":"\\x41"}}', '{"a":"\\u12"}',
  '{"event_type":"created","payload":{"a":"a\u0001b"}}', '{"event_type":"created","payload":{"\\ud800":1}}', '{"event_type":"created","payload":{"a":"\\udfff\\ud800"}}',
  '{"__proto__":{"polluted":"yes"},"event_type":"created"}', '{"constructor":{"prototype":{"polluted":"yes"}}}', '{"event_type":"created","payload":{"a":1e999}}',
  '{"event_type":"created","payload":{"a":-0}}', '{"event_type":"created","payload":{"a":9007199254740993}}', '{"event_type":"created","expected_version":1e999}',
  '{"event_type":"created","expected_version":-0}', '{"event_type":"created","expected_version":9007199254740993}', '{"event_type":"created","expected_version":1.0}',
  `${'['.repeat(5000)}`, `{"event_type":"created","payload":${'['.repeat(5000)}1${']'.repeat(5000)}}`, `{"events":${'['.repeat(5000)}${']'.repeat(5000)}}`,
];
const CONTENT_TYPES = [
  'application/json', 'application/json; charset=utf-8', 'application/JSON', 'application/json; charset=latin1', 'application/json;charset=utf-16', 'text/plain',
  'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/x-ndjson', 'application/xml', 'application/json, text/plain',
  'application/merge-patch+json', 'application/json-patch+json', '*/*', 'application/jsonx', 'json', 'application/json; boundary=__proto__',
];
const BAD_BYTES = [
  Buffer.from('{"event_type":"created","payload":{"a":"\xff\xfe"}}', 'latin1'),
  Buffer.from('{"event_type":"created","payload":{"a":"\xed\xa0\x80"}}', 'latin1'),
  Buffer.from('{"event_type":"created","payload":{"a":"\xc0\xaf"}}', 'latin1'),
  Buffer.from('{"event_type":"created","payload":{"a":"\xe2\x82"}}', 'latin1'),
  Buffer.from('\xff\xfe{\x00"\x00}\x00', 'latin1'),
  Buffer.from('{"event_type":"created\x00","payload":{}}', 'latin1'),
];

function bodyJunk(rng: Rng, base: Draft): Draft {
  const d = { ...base, label: `junk:${base.label}`, body: undefined };
  rng.weighted<() => void>([
    [5, () => { d.bodyText = rng.pick(BAD_JSON); }],
    [2, () => { d.bodyText = ''; d.contentType = 'application/json'; }],
    [3, () => { d.bodyText = base.body !== undefined ? jsonText(base.body) : '{}'; d.contentType = rng.pick(CONTENT_TYPES); }],
    [1, () => { d.bodyText = rng.pick(BAD_BYTES); }],
    [1, () => { d.bodyText = base.body !== undefined ? jsonText(base.body) : '{}'; d.contentType = ''; }],
  ])();
  return d;
}

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'];

function pathFuzz(rng: Rng, ctx: FuzzContext): Draft {
  const { type, id } = target(rng);
  const t = segment(rng, type);
  const i = segment(rng, id);
  const path = rng.weighted<() => string>([
    [6, () => rng.pick([`/v1/aggregates/${t}/${i}`, `/v1/aggregates/${t}/${i}/events`, `/v1/aggregates/${t}/${i}/patch`, `/v1/aggregates/${t}/${i}/verify`, `/v1/aggregates/${t}/${i}/select`, `/v1/aggregates/${t}/${i}/proof`, `/v1/aggregates/${t}`, `/v1/schemas/${t}`, `/v1/schemas/${t}/versions/${segment(rng, '1')}`, `/v1/events/${segment(rng, ctx.eventIds[0] ?? '1')}`, `/v1/aggregates/${t}/${i}/${segment(rng, 'snapshots')}`])],
    [2, () => rng.pick(['/', '', '//', '/v1', '/v1/', '/v2/aggregates', '/v1/aggregates/', '/v1/aggregates//x', `/v1/aggregates/${type}/${id}/events/extra`, '/health/', '/HEALTH', '/Health', '/v1/./aggregates', '/v1/aggregates/../schemas', `/v1/aggregates/${type}/${id}/%2e%2e/verify`, '/%2e%2e/%2e%2e/etc/passwd', '/../../etc/passwd', '/v1/events/99999999999999999999', '/v1/events/999999999999999999999', '/v1/events/-1', '/v1/events/1e3', '/v1/events/0', '/v1/schemas/fz_person/versions/0', '/v1/schemas/fz_person/versions/99999999999999999', '/openapi.json/', '/metrics?x=1', '/v1/status/', '/v1/aggregates?', '/v1/aggregates??take=1', '/v1/aggregates?&&', '/v1/aggregates#x', '/v1/import/', '/v1/batch/x'])],
    [1, () => `/v1/${randomText(rng, rng.int(30))}`],
  ])();
  const method = rng.chance(0.8) ? rng.pick(METHODS) : rng.pick(['get', 'post', 'Get']);
  return draft(`path`, method, path, { body: method === 'POST' || method === 'PUT' || rng.chance(0.1) ? obj({ event_type: 'created', payload: payload(rng) }) : undefined });
}

/** Requests that are not well-formed HTTP/1.1 (or that only a raw socket can send). */
function rawJunk(rng: Rng, ctx: FuzzContext, root: string): Buffer {
  const auth = `Authorization: Bearer ${root}\r\n`;
  const line = (method: string, target: string, version = 'HTTP/1.1'): string => `${method} ${target} ${version}\r\nHost: 127.0.0.1\r\nConnection: close\r\n${auth}`;
  const body = '{"event_type":"created","payload":{"a":1}}';
  const post = (extra: string, b = body): string => `${line('POST', '/v1/aggregates/fz_order/o1/events')}Content-Type: application/json\r\n${extra}Content-Length: ${Buffer.byteLength(b, 'latin1')}\r\n\r\n${b}`;
  const text = rng.pick<() => string>([
    () => `${line(rng.pick(['FOO', 'get', 'G ET', 'TRACE', 'CONNECT', 'PROPFIND', 'M-SEARCH', 'GET\x00', 'PURGE', 'QUERY', 'LINK']), '/v1/aggregates')}\r\n`,
    () => rng.pick(['GET /health\r\n\r\n', 'GET /health HTTP/2.0\r\nHost: x\r\n\r\n', 'GET /health HTTP/1.1 extra\r\nHost: x\r\n\r\n', 'GET health HTTP/1.1\r\nHost: x\r\n\r\n', 'GET * HTTP/1.1\r\nHost: x\r\n\r\n', '\r\n\r\n', 'HELLO\r\n\r\n', 'GET /health HTTP/1.0\r\n\r\n', 'GET /health HTTP/9.9\r\nHost: x\r\n\r\n', 'GET /health HTTP/1.1\r\n\r\n', 'GET /health HTTP/1.1\nHost: x\n\n']),
    () => `${line('GET', `http://127.0.0.1/v1/aggregates/fz_order/o1`)}\r\n`,
    () => `${line('GET', '/v1/aggregates')}X-Tenant-Id: ${rng.pick(['a\x00b', '\x00', 'acme\x00default', 'a\rb', 'a\x7fb', 'é', '\xed\xa0\x80', '\xff'])}\r\n\r\n`,
    () => `${line('GET', '/v1/aggregates/fz_order/o1')}`.replace(auth, `Authorization: Bearer ${root.slice(0, 20)}\x00${root.slice(20)}\r\n`) + '\r\n',
    () => `${line('GET', rng.pick(['/v1/aggregates/fz\x00order/o1', '/v1/aggregates/fz_order/o 1', '/v1/aggregates/fz_order/\xc3\xa9', '/v1/aggregates/fz_order/\xed\xa0\x80', '/v1/aggregates/fz_order/o1\x7f', '/v1/aggregates/fz_order/o1\r']))}\r\n`,
    () => `${line('GET', '/v1/aggregates')}X-Bad Header: 1\r\nNoColon\r\n : x\r\n\r\n`,
    () => `${line('GET', '/v1/aggregates')}X-Tenant-Id: a\r\n  folded\r\n\r\n`,
    () => `${line('GET', '/v1/aggregates')}X-Big: ${'x'.repeat(rng.pick([17_000, 40_000]))}\r\n\r\n`,
    () => `${line('GET', `/v1/aggregates?filter=${'('.repeat(9000)}`)}\r\n`,
    () => post('Content-Length: 5\r\n'),
    () => post('Transfer-Encoding: chunked\r\n'),
    () => `${line('POST', '/v1/aggregates/fz_order/o1/events')}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${rng.pick(['zz\r\n{}\r\n0\r\n\r\n', '2\r\n{}\r\n0\r\n\r\n', `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`, '-1\r\n\r\n', 'ffffffffffffffff\r\n{}\r\n0\r\n\r\n'])}`,
    () => `${line('POST', '/v1/aggregates/fz_order/o1/events')}Content-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`,
    () => `${line('GET', '/v1/aggregates')}${Array.from({ length: 2100 }, (_, n) => `X-H${n}: v`).join('\r\n')}\r\n\r\n`,
    () => `${line('GET', `/v1/events/${ctx.eventIds[0] ?? '1'}`)}Content-Length: abc\r\n\r\n`,
  ])();
  return Buffer.from(text, 'latin1');
}

// ---- The generator ----------------------------------------------------------------------------

/** Share of the run per category; heavy mutations sit inside `mutate` at a few hundred per 10,000. */
const CATEGORIES = [
  [24, 'write'],
  [22, 'read'],
  [20, 'mutate'],
  [10, 'query'],
  [8, 'path'],
  [8, 'auth'],
  [5, 'junk'],
  [3, 'raw'],
] as const;

export function generate(seed: number, index: number, ctx: FuzzContext): FuzzRequest {
  const rng = new Rng(requestSeed(seed, index));
  const category = rng.weighted(CATEGORIES);
  const root = ctx.tokens.root;
  if (category === 'raw') {
    return { index, label: 'raw', method: 'RAW', path: '', headers: {}, raw: rawJunk(rng, ctx, root), malformedHttp: true, tenant: undefined };
  }
  let d: Draft;
  let auth: string | undefined = `Bearer ${root}`;
  let tenant: string | undefined = rng.chance(0.1) ? rng.pick(TENANTS) : undefined;
  switch (category) {
    case 'write': d = writeDraft(rng); break;
    case 'read': d = readDraft(rng, ctx); break;
    case 'mutate': {
      d = writeDraft(rng);
      const heavy = rng.chance(0.12);
      if (d.body === undefined || d.bodyText !== undefined) d.body = obj({ event_type: 'created', payload: payload(rng) });
      for (let n = heavy ? 1 : rng.range(1, 3); n > 0; n--) d.body = mutateOnce(rng, d.body as J, heavy);
      d.label = `mutate:${d.label}${heavy ? '+heavy' : ''}`;
      break;
    }
    case 'query': d = readDraft(rng, ctx); d.query = mutateQuery(rng, d.query, ctx); d.label = `query:${d.label}`; break;
    case 'path': d = pathFuzz(rng, ctx); break;
    case 'auth':
      d = rng.chance(0.5) ? readDraft(rng, ctx) : writeDraft(rng);
      auth = authorization(rng, ctx.tokens);
      tenant = tenantHeader(rng);
      if (rng.chance(0.2)) d.headers[rng.pick(['accept', 'x-http-method-override', 'x-forwarded-for', 'origin', 'cookie', 'x-tenant-id '])] = rng.pick(['text/html', 'DELETE', '127.0.0.1', 'null', '__proto__=1', '*/*']);
      d.label = `auth:${d.label}`;
      break;
    default: d = bodyJunk(rng, writeDraft(rng)); break;
  }
  return finish(index, d, auth, tenant);
}

function finish(index: number, d: Draft, auth: string | undefined, tenant: string | undefined): FuzzRequest {
  const headers: Record<string, string> = { ...d.headers };
  if (auth !== undefined) headers.authorization = auth;
  if (tenant !== undefined) headers['x-tenant-id'] = tenant;
  const body = d.bodyText ?? (d.body !== undefined ? jsonText(d.body) : undefined);
  if (body !== undefined) {
    const type = d.contentType ?? 'application/json';
    if (type !== '') headers['content-type'] = type;
  }
  const query = d.query.map(([k, v]) => `${pctEncode(k)}=${pctEncode(v)}`).join('&');
  const path = query.length > 0 ? `${d.path}${d.path.includes('?') ? '&' : '?'}${query}` : d.path;
  const upper = d.method.toUpperCase();
  const namesOk = Object.keys(headers).every((name) => /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name));
  const viaFetch = fetchKeepsPath(path) && namesOk && Object.values(headers).every(fetchKeepsHeader) && !((upper === 'GET' || upper === 'HEAD') && body !== undefined) && METHODS.includes(upper);
  const request: FuzzRequest = { index, label: d.label, method: d.method, path, headers, ...(body !== undefined ? { body } : {}), malformedHttp: false, tenant };
  if (!viaFetch) {
    request.raw = rawRequest(d.method, path, headers, body);
    // Raw control bytes or spaces in the target or a header, or a lowercase method, are not HTTP.
    request.malformedHttp = !path.startsWith('/') || /[^\x21-\x7e]/.test(path) || !/^[A-Z]+$/.test(d.method) || !namesOk || Object.values(headers).some((v) => /[\x00-\x08\x0a-\x1f\x7f]/.test(v));
  }
  return request;
}

/** HTTP/1.1 bytes of a request: the target and header values as UTF-8, the body as given. */
export function rawRequest(method: string, path: string, headers: Record<string, string>, body: string | Buffer | undefined): Buffer {
  const bytes = body === undefined ? undefined : typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  if (bytes) lines.push(`Content-Length: ${bytes.length}`);
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8');
  return bytes ? Buffer.concat([head, bytes]) : head;
}
