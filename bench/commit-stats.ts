/**
 * Group commits seen from the server's /metrics around one measured run: how many requests shared
 * a group commit, and how many group commits shared an LMDB write transaction (each transaction is
 * one flush: an fdatasync of its pages and a synchronous meta page write, measured with strace).
 */
import type { HttpApi } from './client.js';

export interface CommitCounters {
  groups: number;
  commands: number;
  transactions: number;
}

export interface CommitStats {
  /** Requests per group commit (eventdbx_commit_batch_commands). */
  group_size: number;
  /** Group commits per LMDB transaction: > 1 when lmdb-js merged queued groups into one flush. */
  groups_per_flush: number;
  /** Flushes per request that reached a shard worker (LMDB transactions / commands). */
  flushes_per_request: number;
}

function sumOf(text: string, metric: string): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(metric)) continue;
    const rest = line.slice(metric.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) total += value;
  }
  return total;
}

export async function readCommitCounters(api: HttpApi): Promise<CommitCounters> {
  const text = await api.text('/metrics');
  return {
    groups: sumOf(text, 'eventdbx_commit_batch_commands_count'),
    commands: sumOf(text, 'eventdbx_commit_batch_commands_sum'),
    transactions: sumOf(text, 'eventdbx_storage_transactions'),
  };
}

export function commitStatsBetween(before: CommitCounters, after: CommitCounters): CommitStats | undefined {
  const groups = after.groups - before.groups;
  const transactions = after.transactions - before.transactions;
  if (groups <= 0 || transactions <= 0) return undefined;
  const commands = after.commands - before.commands;
  return { group_size: commands / groups, groups_per_flush: groups / transactions, flushes_per_request: commands > 0 ? transactions / commands : 0 };
}
