/**
 * The shard worker's replies: each group's answers leave in submission order, and only once they
 * may. `sync` sends a group's replies once its commit is durable. `async` sends them once the
 * commit is visible: an on-thread commit is visible when it returns (meta-flush.ts); one handed to
 * lmdb-js's write thread resolves only after its flush and has no "committed" notification, so the
 * worker probes its own fresh read snapshot for the last head the group wrote. A visible commit is
 * in the OS page cache (a kill -9 loses nothing); a power cut can take only the groups
 * acknowledged since the last flush, and LMDB reopens on its last flushed meta page.
 */
import type { MessagePort } from 'node:worker_threads';
import { DbxError, toWireError } from '../core/index.js';
import { failReplies, type PreparedGroup } from './group.js';
import type { ShardReply, ShardReplyMessage } from './protocol.js';
import type { ShardStore } from './store.js';

/** A submitted group whose replies have not all gone out. */
export interface PendingAck {
  group: PreparedGroup;
  groupSize: number;
  /** Group commits in flight when this one was handed to LMDB, itself included (pipeline depth). */
  depth: number;
  probe: VisibilityProbe | undefined;
  /** `async`: the commit is visible (its replies may go before it is durable). */
  visible: boolean;
  durable?: boolean;
  failed?: DbxError;
}

/** Where to look for a group's commit: the last head it wrote, and the version that head reaches. */
export interface VisibilityProbe {
  store: ShardStore;
  key: [string, string, string];
  version: number;
  snapshotVersion: number;
}

export function visibilityProbe(group: PreparedGroup, storeOf: (shard: number) => ShardStore): VisibilityProbe | undefined {
  if (!group.writes) return undefined;
  for (const [shard, ws] of group.builder.writeSets) {
    const last = ws.heads[ws.heads.length - 1];
    if (last) return { store: storeOf(shard), key: last.key, version: last.head.version, snapshotVersion: last.head.snapshot_version ?? -1 };
  }
  return undefined;
}

function visible(probe: VisibilityProbe): boolean {
  // Stored form: the probe needs the version only, not the (sealed) state.
  const stored = probe.store.storedHeads.get(probe.key);
  if (!stored) return false;
  return stored.version > probe.version || (stored.version === probe.version && (stored.snapshot_version ?? -1) >= probe.snapshotVersion);
}

export class ReplyQueue {
  private readonly acks: PendingAck[] = [];
  private polling = false;

  constructor(
    private readonly port: MessagePort,
    /** Renews this thread's read snapshot, so a probe sees the newest commit. */
    private readonly resetReadTxn: () => void,
  ) {}

  push(ack: PendingAck): void {
    this.acks.push(ack);
    if (ack.probe) this.poll();
    if (ack.visible) this.flush();
  }

  /** Sends every reply that may go, oldest group first; a group never overtakes an earlier one. */
  flush(): void {
    let fresh = false;
    while (this.acks.length > 0) {
      const head = this.acks[0] as PendingAck;
      if (head.failed) {
        this.send(failReplies(head.group.replies, head.failed.toWire()), head.groupSize, head.depth);
      } else if (!head.durable && head.group.writes) {
        // Sync, an async part of a cross-worker batch (group.twoPhase), or async without a head to
        // probe: wait for the flush.
        if (!head.visible) {
          if (!head.probe) break;
          if (!fresh) {
            this.resetReadTxn();
            fresh = true;
          }
          if (!visible(head.probe)) break;
        }
        this.send(head.group.replies, head.groupSize, head.depth);
      } else {
        // Durable, or writes nothing: every group before it has been answered.
        this.send(head.group.replies, head.groupSize, head.depth);
      }
      this.acks.shift();
    }
    if (this.acks[0]?.probe && !this.acks[0].durable) this.poll();
  }

  /**
   * Each reply becomes its own JSON text: one that cannot be serialised fails alone (with its id),
   * never the others of its group.
   */
  send(replies: ShardReply[], groupSize?: number, depth?: number): void {
    if (replies.length === 0) return;
    const ids: number[] = [];
    const texts: string[] = [];
    for (const reply of replies) {
      ids.push(reply.id);
      try {
        texts.push(JSON.stringify(reply));
      } catch (err) {
        console.error('shard worker: reply could not be serialised', err);
        const error = toWireError(new DbxError('internal', 'the result could not be sent back from the shard worker', undefined, { cause: err }));
        texts.push(JSON.stringify({ id: reply.id, ok: false, error } satisfies ShardReply));
      }
    }
    const message: ShardReplyMessage = { ids, replies: texts, ...(groupSize !== undefined ? { group_size: groupSize } : {}), ...(depth !== undefined ? { pipeline_depth: depth } : {}) };
    this.port.postMessage(message);
  }

  private poll(): void {
    if (this.polling) return;
    this.polling = true;
    // setImmediate, not a timer: a commit becomes visible within ~0.1–0.5 ms, a timer's floor is 1 ms.
    setImmediate(() => {
      this.polling = false;
      this.flush();
    });
  }
}
