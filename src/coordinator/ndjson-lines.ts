/**
 * The lines of a streamed NDJSON body (POST /v1/import, tenant imports), split as bytes as they
 * arrive and each decoded strictly as UTF-8: a line that is not UTF-8 is refused by its number
 * (a lenient decode would store U+FFFD in place of what was sent), and a line longer than the
 * bound is refused without buffering it. A final line without a newline counts; CR before LF is
 * dropped. Refused lines come as items too, so a caller may read the rest of the body and drop it.
 */
import type { Readable } from 'node:stream';
import { DbxError, decodeUtf8Strict } from '../core/index.js';

export type NdjsonLine = { line: number; text: string; error?: undefined } | { line: number; error: DbxError };

export async function* ndjsonLines(body: Readable, lineBytesMax: number): AsyncGenerator<NdjsonLine> {
  let carry: Buffer[] = [];
  let carryBytes = 0;
  let tooLong = false;
  let line = 0;
  const decode = (bytes: Buffer): NdjsonLine => {
    line++;
    const text = decodeUtf8Strict(bytes);
    if (text === undefined) return { line, error: new DbxError('validation_failed', `line ${line}: not UTF-8 (I-JSON, RFC 7493 §2.1)`, { line }) };
    return { line, text: text.endsWith('\r') ? text.slice(0, -1) : text };
  };
  for await (const chunk of body as AsyncIterable<Buffer>) {
    let start = 0;
    for (let nl = chunk.indexOf(0x0a, start); nl >= 0; nl = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, nl);
      start = nl + 1;
      if (tooLong) {
        // The rest of an over-long line: already refused, skipped up to its end.
        tooLong = false;
        continue;
      }
      const bytes = carry.length > 0 ? Buffer.concat([...carry, piece]) : piece;
      carry = [];
      carryBytes = 0;
      yield decode(bytes);
    }
    if (start < chunk.length && !tooLong) {
      carry.push(chunk.subarray(start));
      carryBytes += chunk.length - start;
      if (carryBytes > lineBytesMax) {
        line++;
        carry = [];
        carryBytes = 0;
        tooLong = true;
        yield { line, error: new DbxError('payload_too_large', `line ${line}: longer than ${lineBytesMax} bytes`, { line }) };
      }
    }
  }
  if (carryBytes > 0) yield decode(Buffer.concat(carry));
}
