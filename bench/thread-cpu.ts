/**
 * Where an operation's CPU goes, by thread: the server's main thread (HTTP, validation, the hop),
 * its shard worker thread(s) (prepare, LMDB puts and commit), the rest of its threads (V8's GC
 * helpers, libuv's pool, lmdb-js's write thread) and the benchmark's own client. Read from
 * /proc/<pid>/task/<tid>/stat (utime, stime in clock ticks) around a measured window and divided
 * by the operations completed in it. Node names every thread "node", so a shard worker is told
 * apart by load: the `workers` busiest threads other than the main one (a shard worker is busy on
 * every write; GC helpers and the pool are not).
 *
 * Linux only; elsewhere `sampleThreads` answers undefined and the benchmark prints no CPU table.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of utime/stime in /proc: USER_HZ is 100 on every Linux ABI. */
const TICKS_PER_S = 100;

export interface ThreadSample {
  /** tid → [user, system] ticks. */
  threads: Map<number, [number, number]>;
  /** process.cpuUsage() of this (client) process, µs. */
  client: NodeJS.CpuUsage;
}

/** µs of CPU per operation; `user`/`sys` split for the server's threads. */
export interface CpuPerOp {
  main_user_us: number;
  main_sys_us: number;
  workers_user_us: number;
  workers_sys_us: number;
  other_us: number;
  client_us: number;
  /** Server and client together: what one operation costs this machine. */
  total_us: number;
}

export function sampleThreads(pid: number | undefined): ThreadSample | undefined {
  if (pid === undefined || process.platform !== 'linux') return undefined;
  const threads = new Map<number, [number, number]>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // Fields after the parenthesised name (which may hold spaces): state is field 3, utime 14, stime 15.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      threads.set(Number(tid), [Number(fields[11]), Number(fields[12])]);
    } catch {
      // The thread ended between the listing and the read: it has no share left to count.
    }
  }
  return { threads, client: process.cpuUsage() };
}

export function cpuPerOp(pid: number, before: ThreadSample, after: ThreadSample, ops: number, workers: number): CpuPerOp | undefined {
  if (ops <= 0) return undefined;
  const perOp = (ticks: number) => (ticks * 1e6) / TICKS_PER_S / ops;
  const deltas: { tid: number; user: number; sys: number }[] = [];
  for (const [tid, [user, sys]] of after.threads) {
    const [u0, s0] = before.threads.get(tid) ?? [0, 0];
    deltas.push({ tid, user: user - u0, sys: sys - s0 });
  }
  const main = deltas.find((d) => d.tid === pid) ?? { user: 0, sys: 0 };
  const others = deltas.filter((d) => d.tid !== pid).sort((a, b) => b.user + b.sys - (a.user + a.sys));
  const busiest = others.slice(0, workers);
  const rest = others.slice(workers).reduce((sum, d) => sum + d.user + d.sys, 0);
  const client = after.client.user - before.client.user + (after.client.system - before.client.system);
  const result = {
    main_user_us: perOp(main.user),
    main_sys_us: perOp(main.sys),
    workers_user_us: perOp(busiest.reduce((sum, d) => sum + d.user, 0)),
    workers_sys_us: perOp(busiest.reduce((sum, d) => sum + d.sys, 0)),
    other_us: perOp(rest),
    client_us: client / ops,
  };
  const total = result.main_user_us + result.main_sys_us + result.workers_user_us + result.workers_sys_us + result.other_us + result.client_us;
  return { ...result, total_us: total };
}
