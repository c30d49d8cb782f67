/**
 * A streaming zip writer and reader (PKWARE APPNOTE 6.3.x, the subset every unzip reads), on
 * node:zlib alone: raw deflate and `zlib.crc32` (Node ≥ 20.15). No dependency: a zip of a few
 * streamed entries is ~150 lines, and an archive library would buffer or pull in far more.
 *
 * Writer: each entry is a local header with general-purpose bit 3 set (sizes and CRC follow the
 * data in a data descriptor, so the data streams straight from the export without a second pass
 * or a seek), then the central directory and the end record. Names are UTF-8 (bit 11). No ZIP64:
 * an entry, or the archive, over 4 GiB − 1 is refused with a clear error (export without --zip).
 *
 * Reader (for `export --verify`): the central directory from the end of the file, then each
 * entry's data through raw inflate, its CRC-32 and size checked at the end of the entry.
 */
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';

const LOCAL_SIG = 0x04034b50;
const DESCRIPTOR_SIG = 0x08074b50;
const CENTRAL_SIG = 0x02014b50;
const END_SIG = 0x06054b50;
const U32_MAX = 0xffffffff;
const FLAGS = 0x0808; // bit 3: data descriptor; bit 11: UTF-8 names
const DEFLATE = 8;
const STORED = 0;
const VERSION = 20;
const END_RECORD_BYTES = 22;

interface WrittenEntry {
  name: Buffer;
  crc: number;
  compressed: number;
  size: number;
  offset: number;
}

function dosDateTime(at: Date): { time: number; date: number } {
  return {
    time: (at.getHours() << 11) | (at.getMinutes() << 5) | Math.floor(at.getSeconds() / 2),
    date: ((Math.max(1980, at.getFullYear()) - 1980) << 9) | ((at.getMonth() + 1) << 5) | at.getDate(),
  };
}

function tooLarge(what: string): Error {
  return new Error(`${what} is larger than 4 GiB, which a zip without ZIP64 cannot hold: export without --zip`);
}

export class ZipWriter {
  private offset = 0;
  private readonly entries: WrittenEntry[] = [];
  private readonly stamp = dosDateTime(new Date());

  constructor(private readonly file: FileHandle) {}

  private async write(bytes: Buffer): Promise<void> {
    let done = 0;
    while (done < bytes.length) done += (await this.file.write(bytes, done, bytes.length - done)).bytesWritten;
    this.offset += bytes.length;
    if (this.offset > U32_MAX) throw tooLarge('the archive');
  }

  /** Deflates `source` into a new entry; resolves with its sizes once its descriptor is written. */
  async add(name: string, source: AsyncIterable<Buffer | string>): Promise<{ size: number; compressed: number }> {
    if (this.entries.length >= 0xffff) throw new Error('a zip without ZIP64 holds at most 65535 entries');
    const nameBytes = Buffer.from(name, 'utf8');
    const offset = this.offset;
    const header = Buffer.alloc(30);
    header.writeUInt32LE(LOCAL_SIG, 0);
    header.writeUInt16LE(VERSION, 4);
    header.writeUInt16LE(FLAGS, 6);
    header.writeUInt16LE(DEFLATE, 8);
    header.writeUInt16LE(this.stamp.time, 10);
    header.writeUInt16LE(this.stamp.date, 12);
    // CRC and sizes (14…25) stay 0: they follow in the data descriptor (bit 3).
    header.writeUInt16LE(nameBytes.length, 26);
    await this.write(Buffer.concat([header, nameBytes]));

    let crc = 0;
    let size = 0;
    let compressed = 0;
    const measure = new Transform({
      transform(chunk: Buffer | string, _encoding, done) {
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
        crc = zlib.crc32(bytes, crc);
        size += bytes.length;
        done(size > U32_MAX ? tooLarge(`entry ${name}`) : null, bytes);
      },
    });
    const sink = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        compressed += chunk.length;
        this.write(chunk).then(() => done(), done);
      },
    });
    await pipeline(source, measure, zlib.createDeflateRaw({ level: 6 }), sink);

    const descriptor = Buffer.alloc(16);
    descriptor.writeUInt32LE(DESCRIPTOR_SIG, 0);
    descriptor.writeUInt32LE(crc >>> 0, 4);
    descriptor.writeUInt32LE(compressed, 8);
    descriptor.writeUInt32LE(size, 12);
    await this.write(descriptor);
    this.entries.push({ name: nameBytes, crc: crc >>> 0, compressed, size, offset });
    return { size, compressed };
  }

  /** Writes the central directory and the end record. The caller syncs and closes the file. */
  async finish(): Promise<void> {
    const start = this.offset;
    for (const e of this.entries) {
      const central = Buffer.alloc(46);
      central.writeUInt32LE(CENTRAL_SIG, 0);
      central.writeUInt16LE((3 << 8) | VERSION, 4); // made by: Unix (permissions below)
      central.writeUInt16LE(VERSION, 6);
      central.writeUInt16LE(FLAGS, 8);
      central.writeUInt16LE(DEFLATE, 10);
      central.writeUInt16LE(this.stamp.time, 12);
      central.writeUInt16LE(this.stamp.date, 14);
      central.writeUInt32LE(e.crc, 16);
      central.writeUInt32LE(e.compressed, 20);
      central.writeUInt32LE(e.size, 24);
      central.writeUInt16LE(e.name.length, 28);
      central.writeUInt32LE((0o100600 << 16) >>> 0, 38); // a regular file, rw for the owner only
      central.writeUInt32LE(e.offset, 42);
      await this.write(Buffer.concat([central, e.name]));
    }
    const end = Buffer.alloc(END_RECORD_BYTES);
    end.writeUInt32LE(END_SIG, 0);
    end.writeUInt16LE(this.entries.length, 8);
    end.writeUInt16LE(this.entries.length, 10);
    end.writeUInt32LE(this.offset - start, 12);
    end.writeUInt32LE(start, 16);
    await this.write(end);
  }
}

export interface ZipEntry {
  name: string;
  /** The entry's bytes, inflated; throws at the end if its CRC-32 or size is wrong. */
  body(): AsyncGenerator<Buffer>;
}

async function readAt(file: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await file.read(buffer, done, length - done, position + done);
    if (bytesRead === 0) throw new Error('the zip archive is truncated');
    done += bytesRead;
  }
  return buffer;
}

/** The entries of a zip archive, from its central directory. */
export async function readZipEntries(path: string): Promise<ZipEntry[]> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    const tailLength = Math.min(size, END_RECORD_BYTES + 0xffff);
    const tail = await readAt(file, size - tailLength, tailLength);
    let at = -1;
    for (let i = tail.length - END_RECORD_BYTES; i >= 0; i--) {
      if (tail.readUInt32LE(i) === END_SIG) {
        at = i;
        break;
      }
    }
    if (at < 0) throw new Error(`${path} is not a zip archive (no end of central directory record)`);
    const count = tail.readUInt16LE(at + 10);
    const centralSize = tail.readUInt32LE(at + 12);
    const centralOffset = tail.readUInt32LE(at + 16);
    const central = await readAt(file, centralOffset, centralSize);
    const entries: ZipEntry[] = [];
    let p = 0;
    for (let n = 0; n < count; n++) {
      if (central.readUInt32LE(p) !== CENTRAL_SIG) throw new Error(`${path}: corrupt central directory`);
      const method = central.readUInt16LE(p + 10);
      const crc = central.readUInt32LE(p + 16);
      const compressed = central.readUInt32LE(p + 20);
      const uncompressed = central.readUInt32LE(p + 24);
      const nameLength = central.readUInt16LE(p + 28);
      const extraLength = central.readUInt16LE(p + 30);
      const commentLength = central.readUInt16LE(p + 32);
      const localOffset = central.readUInt32LE(p + 42);
      const name = central.subarray(p + 46, p + 46 + nameLength).toString('utf8');
      p += 46 + nameLength + extraLength + commentLength;
      if (method !== DEFLATE && method !== STORED) throw new Error(`${path}: entry ${name} uses compression method ${method} (only stored and deflate are read)`);
      const local = await readAt(file, localOffset, 30);
      if (local.readUInt32LE(0) !== LOCAL_SIG) throw new Error(`${path}: corrupt local header of ${name}`);
      const dataStart = localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
      entries.push({ name, body: () => entryBody(path, name, dataStart, compressed, uncompressed, crc, method) });
    }
    return entries;
  } finally {
    await file.close();
  }
}

async function* entryBody(path: string, name: string, start: number, compressed: number, size: number, crc: number, method: number): AsyncGenerator<Buffer> {
  let source: AsyncIterable<Buffer> | Buffer[] = [];
  if (compressed > 0) {
    const raw = createReadStream(path, { start, end: start + compressed - 1 });
    if (method === DEFLATE) {
      const inflate = zlib.createInflateRaw();
      raw.on('error', (err) => inflate.destroy(err));
      source = raw.pipe(inflate);
    } else source = raw;
  }
  let actual = 0;
  let length = 0;
  for await (const chunk of source) {
    actual = zlib.crc32(chunk, actual);
    length += chunk.length;
    yield chunk;
  }
  if (length !== size || actual >>> 0 !== crc) throw new Error(`${path}: entry ${name} is corrupt (CRC-32 or size does not match)`);
}
