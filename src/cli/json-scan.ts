/**
 * Byte scanners for export documents as they stream: count rows for the progress bar without
 * parsing, and split a JSON array into its elements for `export --verify` while holding one
 * element at a time. They work on UTF-8 bytes: every structural character is ASCII, and no byte of
 * a multi-byte sequence is below 0x80, so bytes never need decoding to be classified.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;
const LF = 0x0a;

function isSpace(c: number): boolean {
  return c === 0x20 || c === LF || c === 0x0d || c === 0x09;
}

/**
 * A JSON array of objects or arrays (any whitespace, compact or pretty). `feed` returns the
 * elements completed by the chunk (as bytes) when `collect` is on, and always counts them.
 */
export class JsonArrayScanner {
  rows = 0;
  private depth = 0;
  private inString = false;
  private escape = false;
  private closed = false;
  /** Parts of the element being read (only when collecting). */
  private parts: Buffer[] = [];

  constructor(private readonly collect: boolean) {}

  feed(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let start = this.depth >= 2 ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i] as number;
      if (this.inString) {
        if (this.escape) this.escape = false;
        else if (c === BACKSLASH) this.escape = true;
        else if (c === QUOTE) this.inString = false;
        continue;
      }
      if (this.depth >= 2) {
        if (c === QUOTE) this.inString = true;
        else if (c === OPEN_OBJECT || c === OPEN_ARRAY) this.depth++;
        else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
          if (--this.depth === 1) {
            this.rows++;
            if (this.collect) {
              this.parts.push(chunk.subarray(start, i + 1));
              out.push(Buffer.concat(this.parts));
              this.parts = [];
            }
            start = -1;
          }
        }
        continue;
      }
      if (isSpace(c)) continue;
      if (this.closed) throw new SyntaxError('unexpected data after the end of the JSON array');
      if (this.depth === 0) {
        if (c !== OPEN_ARRAY) throw new SyntaxError('an export document must be a JSON array');
        this.depth = 1;
      } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
        this.depth = 2;
        start = i;
      } else if (c === CLOSE_ARRAY) {
        this.depth = 0;
        this.closed = true;
      } else if (c !== COMMA) {
        throw new SyntaxError('an export document must be a JSON array of objects');
      }
    }
    if (this.collect && start >= 0) this.parts.push(Buffer.from(chunk.subarray(start)));
    return out;
  }

  /** Throws unless the array was closed (a cut-off transfer or file). */
  end(): void {
    if (!this.closed) throw new SyntaxError('the JSON array is incomplete (the document was cut off)');
  }
}

/** CSV (RFC 4180): records end at a line feed outside quotes; the first record is the header. */
export class CsvRowCounter {
  private records = 0;
  private quoted = false;

  get rows(): number {
    return Math.max(0, this.records - 1);
  }

  feed(chunk: Buffer): void {
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i] as number;
      if (c === QUOTE) this.quoted = !this.quoted;
      else if (c === LF && !this.quoted) this.records++;
    }
  }
}

/** The parsed elements of a streamed JSON array, one at a time. */
export async function* jsonArrayElements(body: AsyncIterable<Buffer | string>): AsyncGenerator<unknown> {
  const scanner = new JsonArrayScanner(true);
  for await (const chunk of body) {
    for (const element of scanner.feed(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk)) yield JSON.parse(element.toString('utf8'));
  }
  scanner.end();
}
