/**
 * Latency recording and the time-boxed runner every measurement shares (operations, floors, the
 * PostgreSQL comparison), so all numbers come from the same loop and the same clock.
 */

export interface OpStats {
  /** Completed operations inside the measured window (warm-up excluded). */
  n: number;
  ops_s: number;
  p50_us: number;
  p99_us: number;
  mean_us: number;
  max_us: number;
  elapsed_ms: number;
}

/** Latencies in µs; grows by doubling so a 2 s window at 50k ops/s costs no reallocation storm. */
export class Recorder {
  private samples = new Float64Array(4096);
  private count = 0;

  add(us: number): void {
    if (this.count === this.samples.length) {
      const bigger = new Float64Array(this.samples.length * 2);
      bigger.set(this.samples);
      this.samples = bigger;
    }
    this.samples[this.count++] = us;
  }

  get size(): number {
    return this.count;
  }

  summary(elapsedMs: number): OpStats {
    const sorted = this.samples.slice(0, this.count).sort();
    const at = (q: number): number => (this.count === 0 ? 0 : (sorted[Math.min(this.count - 1, Math.floor(q * this.count))] as number));
    let sum = 0;
    for (let i = 0; i < this.count; i++) sum += sorted[i] as number;
    return {
      n: this.count,
      ops_s: elapsedMs > 0 ? round((this.count * 1000) / elapsedMs) : 0,
      p50_us: round(at(0.5)),
      p99_us: round(at(0.99)),
      mean_us: round(this.count ? sum / this.count : 0),
      max_us: round(this.count ? (sorted[this.count - 1] as number) : 0),
      elapsed_ms: round(elapsedMs),
    };
  }
}

function round(v: number): number {
  return Math.round(v * 10) / 10;
}

export function nowUs(): number {
  return Number(process.hrtime.bigint()) / 1000;
}

export interface TimedOptions {
  concurrency: number;
  durationMs: number;
  /** Unrecorded lead-in so connections, JIT and caches are warm before the window opens. */
  warmupMs: number;
  /**
   * Operations available at most (e.g. archive has one per aggregate); the run ends early when
   * they are used up. Warm-up consumes from the same supply.
   */
  maxOps?: number;
  /** Ignore the time box and run until maxOps are done (restore must undo every archive). */
  untilExhausted?: boolean;
  /** Called once when the measured window opens (the warm-up is over): CPU samples start here. */
  onWindowOpen?: () => void;
}

/**
 * Runs `op` from `concurrency` loops, each with one request in flight, and records every
 * completion in the window. Any error aborts the whole run: a benchmark that swallows errors
 * measures error round trips (the original harness's flaw).
 */
export async function runTimed(options: TimedOptions, op: (worker: number) => Promise<void>): Promise<OpStats> {
  const recorder = new Recorder();
  let issued = 0;
  let failure: unknown;
  const supply = options.maxOps ?? Number.POSITIVE_INFINITY;
  const start = nowUs();
  const windowStart = start + options.warmupMs * 1000;
  const windowEnd = options.untilExhausted ? Number.POSITIVE_INFINITY : windowStart + options.durationMs * 1000;
  let lastDone = windowStart;
  const opener = options.onWindowOpen ? setTimeout(options.onWindowOpen, options.warmupMs) : undefined;
  const loop = async (worker: number): Promise<void> => {
    while (failure === undefined && issued < supply) {
      const t0 = nowUs();
      if (t0 >= windowEnd) return;
      issued++;
      try {
        await op(worker);
      } catch (err) {
        failure ??= err;
        return;
      }
      const t1 = nowUs();
      if (t0 >= windowStart) {
        recorder.add(t1 - t0);
        lastDone = t1;
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, (_, i) => loop(i)));
  clearTimeout(opener);
  if (failure !== undefined) throw failure;
  // Divide by the time actually used: a supply-limited run may end before the window closes, and
  // operations started inside the window are counted even when they finish just after it.
  const elapsedMs = (lastDone - windowStart) / 1000;
  return recorder.summary(elapsedMs);
}
