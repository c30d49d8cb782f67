/**
 * `dbx proof check <file>`: checks an RFC 6962 proof as `GET …/proof` returns it, so an auditor
 * holding an old root can confirm the history was only appended to.
 *
 * A proof only shows that its hashes lead to the root(s) written inside it; anyone can invent a leaf
 * whose "root" is the leaf itself. So the verdict is `valid` only when the root is also one the user
 * trusts: given with `--root`, or fetched from a server the user names with `--server`. Without
 * either the command says the proof is internally consistent but unchecked, and exits 1.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { z } from 'zod';
import { createClient } from '../client/index.js';
import { verifyConsistency, verifyInclusion } from '../core/index.js';
import { resolveDataDir } from './options.js';
import { CliError, printJson, readableInputFile } from './output.js';
import { resolveToken } from './session.js';

interface CheckFlags {
  root?: string;
  server?: string;
  token?: string;
  tenant?: string;
  dataDir?: string;
  json?: boolean;
}

export function proofCommand(): Command {
  const proof = new Command('proof')
    .description('Check Merkle proofs against a root you trust')
    .addHelpText('after', '\nExample:\n  dbx proof check proof.json --root <hex root you trust>\n');
  proof
    .command('check')
    .description('Check an inclusion or consistency proof (the JSON that GET …/proof returns) against a trusted root')
    .argument('<file>', "proof JSON file, or '-' for standard input")
    .option('--root <hex>', 'a root you trust: inclusion → the tree root; consistency → the older (from_root) or newer (to_root) root')
    .option('--server <url>', "fetch the trusted roots from this server (the aggregate the proof names, at the proof's sizes)")
    .option('--token <jwt>', 'token for --server (default $EVENTDBX_TOKEN, else <data_dir>/cli.token)')
    .option('--tenant <tenant>', 'tenant for --server (default $EVENTDBX_TENANT, else "default")')
    .option('--data-dir <dir>', 'where to find cli.token for --server (default $EVENTDBX_DATA_DIR or ~/.eventdbx)')
    .option('--json', 'print the verdict as JSON')
    .addHelpText(
      'after',
      '\nWithout --root or --server nothing is trusted: the command reports whether the proof is internally' +
        '\nconsistent and exits 1.\n' +
        "\nExample:\n  dbx proof check p.json --root <root you recorded at size 3>\n  (p.json from: curl -H \"authorization: Bearer $TOKEN\" 'localhost:7070/v1/aggregates/person/p-1/proof?from_size=3')\n" +
        '  dbx proof check p.json --server http://127.0.0.1:7070\n',
    )
    .action(async (file: string, opts: CheckFlags) => {
      const parsed = parseProof(readJson(file));
      if (opts.root !== undefined && !HEX.test(opts.root)) throw new CliError('--root must be a 64-character lowercase hex hash', 2);
      const serverRoots = opts.server !== undefined ? await fetchRoots(parsed, opts, opts.server) : undefined;
      const verdict = checkProof(parsed, { ...(opts.root !== undefined ? { root: opts.root } : {}), ...(serverRoots ? { serverRoots } : {}) });
      if (opts.json) printJson(verdict);
      else process.stdout.write(`${describeVerdict(verdict)}\n`);
      if (!verdict.valid) process.exitCode = 1;
    });
  return proof;
}

const HEX = /^[0-9a-f]{64}$/;
const hex = z.string().regex(HEX, 'must be a 64-character lowercase hex hash');
const names = { aggregate_type: z.string().optional(), aggregate_id: z.string().optional() };
const inclusionSchema = z.object({ ...names, version: z.number().int().min(1), tree_size: z.number().int().min(1), leaf_hash: hex, root: hex, proof: z.array(hex) });
const consistencySchema = z.object({ ...names, from_size: z.number().int().min(1), to_size: z.number().int().min(1), from_root: hex, to_root: hex, proof: z.array(hex) });

export type ParsedProof = { kind: 'inclusion'; p: z.infer<typeof inclusionSchema> } | { kind: 'consistency'; p: z.infer<typeof consistencySchema> };

/** Where the trusted roots come from: `--root`, and the server's root at each size the proof names. */
export interface Trust {
  root?: string;
  serverRoots?: Map<number, string>;
}

export interface ProofVerdict {
  kind: 'inclusion' | 'consistency';
  /** True only when the proof is consistent and its root matches a trusted one. */
  valid: boolean;
  /** The proof's hashes lead to the root(s) written inside it (says nothing about who made them). */
  consistent: boolean;
  /** What the proof's roots were compared with; empty when nothing was trusted. */
  checked_against: ('root' | 'server')[];
  reason?: string;
}

function readJson(file: string): unknown {
  const text = readFileSync(readableInputFile(file) === '-' ? 0 : file, 'utf8');
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(`${file} is not JSON`);
  }
}

export function parseProof(raw: unknown): ParsedProof {
  const inclusion = inclusionSchema.safeParse(raw);
  if (inclusion.success) return { kind: 'inclusion', p: inclusion.data };
  const consistency = consistencySchema.safeParse(raw);
  if (consistency.success) return { kind: 'consistency', p: consistency.data };
  throw new CliError(
    'not a proof: expected {version, tree_size, leaf_hash, root, proof} (inclusion) or {from_size, to_size, from_root, to_root, proof} (consistency)',
  );
}

/** The proof's own roots by tree size: what a trusted source must agree with. */
function rootsBySize(proof: ParsedProof): Map<number, string> {
  if (proof.kind === 'inclusion') return new Map([[proof.p.tree_size, proof.p.root]]);
  return new Map([
    [proof.p.from_size, proof.p.from_root],
    [proof.p.to_size, proof.p.to_root],
  ]);
}

export function checkProof(proof: ParsedProof, trust: Trust): ProofVerdict {
  const { kind } = proof;
  const consistent =
    proof.kind === 'inclusion'
      ? verifyInclusion(proof.p.leaf_hash, proof.p.version - 1, proof.p.tree_size, proof.p.proof, proof.p.root)
      : verifyConsistency(proof.p.from_size, proof.p.to_size, proof.p.from_root, proof.p.to_root, proof.p.proof);
  const checked: ProofVerdict['checked_against'] = [];
  const fail = (reason: string): ProofVerdict => ({ kind, valid: false, consistent, checked_against: checked, reason });
  if (!consistent) return fail(kind === 'inclusion' ? 'the audit path does not lead to the root' : 'the newer tree does not extend the older one');
  const own = rootsBySize(proof);
  if (trust.root !== undefined) {
    checked.push('root');
    if (![...own.values()].includes(trust.root)) return fail(`the proof's ${kind === 'inclusion' ? 'root differs' : 'roots differ'} from the trusted root`);
  }
  if (trust.serverRoots !== undefined) {
    checked.push('server');
    for (const [size, root] of own) {
      const served = trust.serverRoots.get(size);
      if (served !== root) return fail(`the server's root at size ${size} is ${served ?? 'absent'}, the proof says ${root}`);
    }
  }
  if (checked.length === 0) return fail('internally consistent, but not checked against a trusted root (give --root <hex> or --server <url>)');
  return { kind, valid: true, consistent, checked_against: checked };
}

function describeVerdict(v: ProofVerdict): string {
  if (v.valid) return `valid: ${v.kind} proof, checked against ${v.checked_against.map((c) => (c === 'root' ? 'the root given with --root' : "the server's root")).join(' and ')}`;
  if (v.consistent && v.checked_against.length === 0) return `unverified: ${v.kind} proof is ${v.reason}`;
  return `INVALID: ${v.kind} proof (${v.reason})`;
}

/** The server's root at each tree size the proof names (`GET …?version=N` carries the root of 1..N). */
async function fetchRoots(proof: ParsedProof, opts: CheckFlags, url: string): Promise<Map<number, string>> {
  const { aggregate_type: type, aggregate_id: id } = proof.p;
  if (type === undefined || id === undefined) {
    throw new CliError('--server needs a proof that names its aggregate (aggregate_type, aggregate_id), as GET …/proof returns it');
  }
  const token = resolveToken({ ...(opts.token !== undefined ? { token: opts.token } : {}) }, resolveDataDir(opts.dataDir), url);
  const tenant = opts.tenant || process.env.EVENTDBX_TENANT || process.env.EVENTDBX_TENANT_ID || 'default';
  const client = createClient({ url, token, tenant, retry: { attempts: 2 } });
  try {
    const roots = new Map<number, string>();
    for (const size of rootsBySize(proof).keys()) {
      const view = await client.get(type, id, { version: size });
      // A GET past the head answers the head: a tree the server does not have is not confirmed.
      if (view.version === size) roots.set(size, view.merkleRoot);
    }
    return roots;
  } finally {
    await client.close();
  }
}
