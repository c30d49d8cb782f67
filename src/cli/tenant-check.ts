/**
 * The offline check of a tenant export (`dbx tenant check <file>`, and `dbx tenant export` as it
 * writes): no server, no key. Every line is an event record as the API returns it; its leaf hash is
 * recomputed from the record minus `hash` and `merkle_root` (RFC 8785 canonical JSON, DESIGN §4),
 * each aggregate's Merkle tree is grown from those leaves in version order (versions 1, 2, 3 …),
 * and every stored `hash` and `merkle_root` must equal the recomputed ones.
 *
 * Like `dbx proof check`, a consistent file only shows that its hashes agree with each other: a
 * forger who rewrites an event can rewrite every later root too, and a file cut after an aggregate
 * stays consistent. What pins the content is the roots digest (SHA-256 over the sorted lines
 * `<type>\t<id>\t<version>\t<final root>\n`) printed when the export was made: `--digest <hex>`
 * compares with it, and only then is the verdict `valid`. Memory: one line, plus one final root
 * and frontier (≤ 64 hashes) per aggregate.
 */
import { createHash } from 'node:crypto';
import { appendLeaf, canonicalize, frontierRoot, leafHash } from '../core/index.js';

export interface ExportProblem {
  line: number;
  aggregate_type?: string;
  aggregate_id?: string;
  version?: number;
  message: string;
}

export interface ExportCheck {
  /** Consistent, and (with a digest to compare) its roots digest matched. */
  valid: boolean;
  /** Every hash and root is the recomputed one, every history runs 1, 2, 3 … */
  consistent: boolean;
  /** Whether a trusted roots digest was compared. */
  digest_checked: boolean;
  lines: number;
  aggregates: number;
  events: number;
  /** SHA-256 of the file's bytes. */
  sha256: string;
  /** SHA-256 over every aggregate's final version and root (see the file comment). */
  roots_digest: string;
  problem?: ExportProblem;
}

interface Tree {
  version: number;
  frontier: string[];
  root: string;
}

/** Feeds bytes as they arrive; `finish` gives the verdict. */
export class ExportChecker {
  private readonly file = createHash('sha256');
  private readonly trees = new Map<string, Tree>();
  private readonly decoder = new TextDecoder();
  private rest = '';
  private lines = 0;
  private events = 0;
  problem: ExportProblem | undefined;

  push(chunk: Uint8Array | string): void {
    this.file.update(chunk);
    this.rest += typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let nl = this.rest.indexOf('\n', start); nl >= 0; nl = this.rest.indexOf('\n', start)) {
      this.line(this.rest.slice(start, nl));
      start = nl + 1;
    }
    this.rest = this.rest.slice(start);
  }

  finish(trustedDigest?: string): ExportCheck {
    this.rest += this.decoder.decode();
    if (this.rest.length > 0) this.line(this.rest);
    this.rest = '';
    const digest = createHash('sha256');
    for (const key of [...this.trees.keys()].sort()) {
      const tree = this.trees.get(key) as Tree;
      digest.update(`${key.replace('\u0000', '\t')}\t${tree.version}\t${tree.root}\n`);
    }
    const rootsDigest = digest.digest('hex');
    const consistent = this.problem === undefined;
    const checked = trustedDigest !== undefined;
    return {
      valid: consistent && (!checked || trustedDigest === rootsDigest),
      consistent,
      digest_checked: checked,
      lines: this.lines,
      aggregates: this.trees.size,
      events: this.events,
      sha256: this.file.digest('hex'),
      roots_digest: rootsDigest,
      ...(this.problem ? { problem: this.problem } : {}),
    };
  }

  private line(raw: string): void {
    this.lines++;
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (this.problem || text.trim().length === 0) return;
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return this.fail({ line: this.lines, message: 'not valid JSON' });
    }
    const { aggregate_type: type, aggregate_id: id, version, hash, merkle_root: root } = record;
    if (typeof type !== 'string' || typeof id !== 'string' || typeof version !== 'number' || typeof hash !== 'string' || typeof root !== 'string') {
      return this.fail({ line: this.lines, message: 'not an event record with aggregate_type, aggregate_id, version, hash and merkle_root' });
    }
    const where = { line: this.lines, aggregate_type: type, aggregate_id: id, version };
    const key = `${type}\u0000${id}`;
    const tree = this.trees.get(key) ?? { version: 0, frontier: [], root: '' };
    if (version !== tree.version + 1) return this.fail({ ...where, message: `version ${version} follows version ${tree.version}` });
    const { hash: _h, merkle_root: _r, ...body } = record;
    let leaf: string;
    try {
      leaf = leafHash(canonicalize(body));
    } catch {
      return this.fail({ ...where, message: 'the record cannot be canonicalised' });
    }
    if (leaf !== hash) return this.fail({ ...where, message: 'hash is not the hash of the record' });
    const frontier = appendLeaf(tree.frontier, tree.version, leaf);
    const recomputed = frontierRoot(frontier);
    if (recomputed !== root) return this.fail({ ...where, message: `merkle_root is not the root of events 1..${version}` });
    this.trees.set(key, { version, frontier, root });
    this.events++;
  }

  private fail(problem: ExportProblem): void {
    this.problem = problem;
  }
}

/** Checks a whole export from a byte stream. */
export async function checkExport(source: AsyncIterable<Uint8Array | string>, trustedDigest?: string): Promise<ExportCheck> {
  const checker = new ExportChecker();
  for await (const chunk of source) checker.push(chunk);
  return checker.finish(trustedDigest);
}

/** One line for a person. */
export function describeCheck(check: ExportCheck): string {
  const counts = `${check.aggregates} aggregate(s), ${check.events} event(s)`;
  if (!check.consistent) {
    const p = check.problem as ExportProblem;
    const at = p.aggregate_type !== undefined ? ` (${p.aggregate_type}/${p.aggregate_id} v${p.version})` : '';
    return `INVALID: line ${p.line}${at}: ${p.message}`;
  }
  if (check.digest_checked && !check.valid) return `INVALID: ${counts} are consistent, but their roots digest ${check.roots_digest} is not the one given`;
  if (check.valid && check.digest_checked) return `valid: ${counts}, every hash and root recomputed, roots digest matches`;
  return `consistent: ${counts}, every hash and root recomputed (roots_digest=${check.roots_digest}; give --digest to compare with the export's)`;
}
