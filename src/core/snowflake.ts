/**
 * Snowflake event ids (DESIGN §3): 41-bit milliseconds since 2024-01-01T00:00:00Z, 10-bit worker id,
 * 12-bit sequence, as a decimal string. Every shard worker of one node draws from the same
 * SharedArrayBuffer with a compare-and-swap, so ids are strictly increasing per node without a lock
 * or a round trip to the coordinator.
 */
export const SNOWFLAKE_EPOCH_MS = Date.UTC(2024, 0, 1);
const SEQUENCE_BITS = 12n;
const WORKER_BITS = 10n;
const SEQUENCE_MAX = (1n << SEQUENCE_BITS) - 1n;
export const WORKER_ID_MAX = Number((1n << WORKER_BITS) - 1n);
const WORKER_MASK = BigInt(WORKER_ID_MAX) << SEQUENCE_BITS;

export function createSnowflakeState(): SharedArrayBuffer {
  return new SharedArrayBuffer(8);
}

export class SnowflakeGenerator {
  private readonly last: BigInt64Array;
  private readonly workerBits: bigint;

  constructor(workerId: number, shared: SharedArrayBuffer = createSnowflakeState()) {
    if (!Number.isInteger(workerId) || workerId < 0 || workerId > WORKER_ID_MAX) {
      throw new RangeError(`snowflake worker id ${workerId} exceeds maximum ${WORKER_ID_MAX}`);
    }
    this.last = new BigInt64Array(shared);
    this.workerBits = BigInt(workerId) << SEQUENCE_BITS;
  }

  next(): bigint {
    for (;;) {
      const previous = Atomics.load(this.last, 0);
      const nowPart = BigInt(Date.now() - SNOWFLAKE_EPOCH_MS) << (SEQUENCE_BITS + WORKER_BITS);
      const fresh = nowPart | this.workerBits;
      let candidate: bigint;
      if (fresh > previous) {
        candidate = fresh;
      } else if ((previous & SEQUENCE_MAX) < SEQUENCE_MAX) {
        candidate = previous + 1n;
      } else {
        // Sequence exhausted in this millisecond: borrow the next one (the clock catches up).
        const nextMs = (previous >> (SEQUENCE_BITS + WORKER_BITS)) + 1n;
        candidate = (nextMs << (SEQUENCE_BITS + WORKER_BITS)) | this.workerBits;
      }
      if (Atomics.compareExchange(this.last, 0, previous, candidate) === previous) return candidate;
    }
  }

  /**
   * An imported id that this generator could hand out later (it carries this node's worker id and
   * is past the generator) would be given to a later write too. One from the clock's past or
   * present: the generator moves past it. One from the clock's future: false, nothing moved — it
   * must be refused, since the generator's position is not kept across a restart, so no jump
   * ahead of the clock would protect it.
   */
  observe(id: bigint): boolean {
    if ((id & WORKER_MASK) !== this.workerBits) return true;
    for (;;) {
      const previous = Atomics.load(this.last, 0);
      if (id <= previous) return true;
      if (snowflakeMs(id) > Date.now()) return false;
      if (Atomics.compareExchange(this.last, 0, previous, id) === previous) return true;
    }
  }

  nextId(): string {
    return this.next().toString();
  }
}

/** Milliseconds since the Unix epoch encoded in an event id. */
export function snowflakeTime(id: string): number {
  return snowflakeMs(BigInt(id));
}

function snowflakeMs(id: bigint): number {
  return Number(id >> (SEQUENCE_BITS + WORKER_BITS)) + SNOWFLAKE_EPOCH_MS;
}
