/**
 * Positions in a tenant's global stream (GET /v1/stream): one opaque, URL-safe token that survives
 * restarts because it holds only stored sequence numbers, never a clock or a process id.
 *
 * A position is a vector of per-shard commit sequences (gapless per shard and tenant, see
 * ShardStore.stream): `seqs[i]` is the last seq consumed on the i-th shard the tenant may use.
 * - single-tenant placement: the tenant's aggregates are hashed over all S shards, so the vector
 *   has S entries, one per shard in shard order;
 * - multi-tenant placement: the tenant lives on one shard and a live move copies its stream with
 *   the seqs unchanged, so the vector has one entry that reads as "this tenant's seq", wherever the
 *   tenant lives now.
 *
 * Wire form: base64url (no padding) of
 *   version (1 byte, 1) · kind (1 byte: 0 shard vector, 1 tenant seq) · murmurhash3(tenant) (4 bytes,
 *   big-endian) · count (LEB128) · count × seq (LEB128)
 * The tenant hash makes a token of another tenant (or another server layout) a clear 400 instead of
 * a silent skip or replay. 4 shards cost ~16 characters.
 */
import murmurhash from 'murmurhash';
import { z } from 'zod';
import { DbxError } from '../core/index.js';

export type PositionKind = 'shards' | 'tenant';

export interface StreamPosition {
  kind: PositionKind;
  /** Last consumed seq per shard slot (see the file comment). */
  seqs: number[];
}

/** What a position must look like on this server for this tenant. */
export interface PositionLayout {
  tenant: string;
  kind: PositionKind;
  /** Vector length: shard_count (single-tenant) or 1 (multi-tenant). */
  count: number;
}

const VERSION = 1;
const HEADER_BYTES = 6;
/** 1024 shards × a 2^53 seq (8 LEB128 bytes) + header, in base64url: the longest token possible. */
export const POSITION_CHARS_MAX = Math.ceil(((HEADER_BYTES + 2 + 1024 * 8) * 4) / 3);
/** Words accepted where a token is: the first event of the stream, or the current head. */
export const POSITION_WORDS = ['start', 'end'] as const;

const SEED = 0x5eed;
const tenantTag = (tenant: string): number => murmurhash.v3(tenant.toLowerCase(), SEED) >>> 0;

export function encodePosition(tenant: string, position: StreamPosition): string {
  const bytes: number[] = [VERSION, position.kind === 'shards' ? 0 : 1];
  const tag = tenantTag(tenant);
  bytes.push((tag >>> 24) & 0xff, (tag >>> 16) & 0xff, (tag >>> 8) & 0xff, tag & 0xff);
  pushVarint(bytes, position.seqs.length);
  for (const seq of position.seqs) pushVarint(bytes, seq);
  return Buffer.from(bytes).toString('base64url');
}

/** The position before the first event. */
export function startPosition(layout: PositionLayout): StreamPosition {
  return { kind: layout.kind, seqs: new Array<number>(layout.count).fill(0) };
}

/**
 * The zod schema of a position token for `layout`: shape first (characters, length), then the
 * decoded content (version, kind, tenant, vector length). Decodes to the seq vector.
 */
export function positionSchema(layout: PositionLayout): z.ZodType<StreamPosition, string> {
  return z
    .string()
    .max(POSITION_CHARS_MAX, `is longer than any position (${POSITION_CHARS_MAX} characters)`)
    .regex(/^[A-Za-z0-9_-]{8,}$/, 'is not a stream position (an opaque base64url token from next_position or an SSE id)')
    .transform((text, ctx) => {
      const decoded = decodeBytes(Buffer.from(text, 'base64url'), layout);
      if (typeof decoded === 'string') {
        ctx.addIssue({ code: 'custom', message: decoded });
        return z.NEVER;
      }
      return decoded;
    }) as unknown as z.ZodType<StreamPosition, string>;
}

/** A token (or `start` / `end`, answered as `'end'` for the caller to resolve) as a position; 400 `invalid_input` otherwise. */
export function parsePosition(text: string, layout: PositionLayout, where: string): StreamPosition | 'end' {
  if (text === 'start') return startPosition(layout);
  if (text === 'end') return 'end';
  const parsed = positionSchema(layout).safeParse(text);
  if (parsed.success) return parsed.data;
  throw new DbxError('invalid_input', `invalid position in ${where}: ${parsed.error.issues[0]?.message ?? 'malformed'}`);
}

function decodeBytes(bytes: Buffer, layout: PositionLayout): StreamPosition | string {
  if (bytes.length < HEADER_BYTES + 1) return 'is not a stream position (too short)';
  if (bytes[0] !== VERSION) return `has an unknown format version (${bytes[0]})`;
  const kind: PositionKind | undefined = bytes[1] === 0 ? 'shards' : bytes[1] === 1 ? 'tenant' : undefined;
  if (kind === undefined) return 'is not a stream position (unknown kind)';
  if (kind !== layout.kind) {
    return kind === 'shards'
      ? 'comes from a single-tenant server (one seq per shard); this server places each tenant on one shard'
      : 'comes from a multi-tenant server (one seq per tenant); this server spreads a tenant over its shards';
  }
  if (bytes.readUInt32BE(2) !== tenantTag(layout.tenant)) return `belongs to another tenant than '${layout.tenant}'`;
  const reader = { bytes, at: HEADER_BYTES };
  const count = readVarint(reader);
  if (count === undefined) return 'is not a stream position (truncated)';
  if (count !== layout.count) return `names ${count} shard(s); this server has ${layout.count}`;
  const seqs: number[] = [];
  for (let i = 0; i < count; i++) {
    const seq = readVarint(reader);
    if (seq === undefined) return 'is not a stream position (truncated)';
    seqs.push(seq);
  }
  if (reader.at !== bytes.length) return 'is not a stream position (trailing bytes)';
  return { kind, seqs };
}

/** LEB128 with arithmetic, not bit operators: seqs go up to 2^53, beyond 32-bit shifts. */
function pushVarint(out: number[], value: number): void {
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
}

function readVarint(reader: { bytes: Buffer; at: number }): number | undefined {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 8; i++) {
    const byte = reader.bytes[reader.at++];
    if (byte === undefined) return undefined;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return Number.isSafeInteger(value) ? value : undefined;
    scale *= 0x80;
  }
  return undefined;
}
