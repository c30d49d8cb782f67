/**
 * `dbx proof check <file>`: checks an RFC 6962 proof as `GET …/proof` returns it, with no server and
 * no data directory, so an auditor holding an old root can confirm the history was only appended to.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { z } from 'zod';
import { verifyConsistency, verifyInclusion } from '../core/index.js';
import { CliError, printJson } from './output.js';

export function proofCommand(): Command {
  const proof = new Command('proof')
    .description('Check Merkle proofs offline')
    .addHelpText('after', '\nExample:\n  dbx proof check proof.json --root <hex root you trust>\n');
  proof
    .command('check')
    .description('Check an inclusion or consistency proof (the JSON that GET …/proof returns)')
    .argument('<file>', "proof JSON file, or '-' for standard input")
    .option('--root <hex>', 'the root you trust (default: the root inside the proof)')
    .option('--json', 'print the verdict as JSON')
    .addHelpText(
      'after',
      "\nExample:\n  dbx proof check p.json --root <root you recorded at size 3>\n  (p.json from: curl -H \"authorization: Bearer $TOKEN\" 'localhost:7070/v1/aggregates/person/p-1/proof?from_size=3')\n",
    )
    .action((file: string, opts: { root?: string; json?: boolean }) => {
      const text = readFileSync(file === '-' ? 0 : file, 'utf8');
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch {
        throw new CliError(`${file} is not JSON`);
      }
      const verdict = checkProof(raw, opts.root);
      if (opts.json) printJson(verdict);
      else process.stdout.write(`${verdict.valid ? 'valid' : 'INVALID'}: ${verdict.kind} proof${verdict.reason ? ` (${verdict.reason})` : ''}\n`);
      if (!verdict.valid) process.exitCode = 1;
    });
  return proof;
}

const hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be a 64-character lowercase hex hash');
const inclusionSchema = z.object({ version: z.number().int().min(1), tree_size: z.number().int().min(1), leaf_hash: hex, root: hex, proof: z.array(hex) });
const consistencySchema = z.object({ from_size: z.number().int().min(1), to_size: z.number().int().min(1), from_root: hex, to_root: hex, proof: z.array(hex) });

export interface ProofVerdict {
  kind: 'inclusion' | 'consistency';
  valid: boolean;
  reason?: string;
}

export function checkProof(raw: unknown, trustedRoot?: string): ProofVerdict {
  const inclusion = inclusionSchema.safeParse(raw);
  if (inclusion.success) {
    const p = inclusion.data;
    if (trustedRoot !== undefined && trustedRoot !== p.root) return { kind: 'inclusion', valid: false, reason: 'root differs from the trusted root' };
    const valid = verifyInclusion(p.leaf_hash, p.version - 1, p.tree_size, p.proof, p.root);
    return { kind: 'inclusion', valid, ...(valid ? {} : { reason: 'the audit path does not lead to the root' }) };
  }
  const consistency = consistencySchema.safeParse(raw);
  if (consistency.success) {
    const p = consistency.data;
    if (trustedRoot !== undefined && trustedRoot !== p.from_root) return { kind: 'consistency', valid: false, reason: 'from_root differs from the trusted root' };
    const valid = verifyConsistency(p.from_size, p.to_size, p.from_root, p.to_root, p.proof);
    return { kind: 'consistency', valid, ...(valid ? {} : { reason: 'the newer tree does not extend the older one' }) };
  }
  throw new CliError(
    'not a proof: expected {version, tree_size, leaf_hash, root, proof} (inclusion) or {from_size, to_size, from_root, to_root, proof} (consistency)',
  );
}
