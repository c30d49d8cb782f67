/**
 * Power-cut harness (issue 8.5): the lazy FUSE filesystem (lazyfs.py, kept beside this file in
 * test/helpers) mounted over a backing dir, and the real `dbx` server started with a fresh kernel
 * boot id. A "cut" is: SIGKILL the server, tell lazyfs to drop what was never fsynced, unmount; the
 * backing dir then holds exactly what a disk would after losing power.
 *
 * Why a fresh boot id: lmdb-js (overlappingSync) trusts a meta page not yet known to be flushed
 * while the boot id is unchanged, because the OS page cache still holds the data. After a real cut
 * the machine reboots, so the test must start the server as if it had: `unshare -m` gives the
 * server its own mount namespace, in which /proc/sys/kernel/random/uuid (procfs, a new value per
 * read; lmdb reads it once per environment open and checks it is procfs) is bind-mounted over
 * /proc/sys/kernel/random/boot_id.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DBX_BIN, captureChild, spawnedServer, type SpawnedServer } from './server.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The source file: tsc does not copy .py into dist, so reach back from dist/test/helpers. */
export const LAZYFS = existsSync(join(here, 'lazyfs.py')) ? join(here, 'lazyfs.py') : resolve(here, '../../../test/helpers/lazyfs.py');
/** Debian's python3-fusepy installs into the system python, which pyenv-style shims may hide. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** Why the power-cut test cannot run here, or undefined when it can. */
export function powerCutUnsupported(): string | undefined {
  if (process.platform !== 'linux') return 'power-cut test needs Linux (FUSE, mount namespaces)';
  if (process.getuid?.() !== 0) return 'power-cut test needs root (FUSE mount, unshare -m, bind mount over boot_id)';
  if (!existsSync('/dev/fuse')) return 'power-cut test needs /dev/fuse';
  const py = spawnSync(PYTHON, ['-c', 'try:\n import fusepy\nexcept ImportError:\n import fuse\n fuse.FUSE'], { encoding: 'utf8' });
  if (py.status !== 0) return 'power-cut test needs python3-fusepy (apt-get install -y python3-fusepy fuse3)';
  if (spawnSync('unshare', ['--version']).status !== 0) return 'power-cut test needs unshare (util-linux)';
  return undefined;
}

export interface LazyMount {
  mountpoint: string;
  /** Sends one control command (`stats`, `crash`, `crash-torn`); resolves with lazyfs's JSON answer. */
  control(command: 'stats' | 'crash' | 'crash-torn'): Promise<Record<string, number | boolean>>;
  unmount(): Promise<void>;
  log(): string;
}

function isMounted(mountpoint: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((line) => line.split(' ')[4] === mountpoint);
}

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Mounts lazyfs over `backing` at `mountpoint` (both must exist); resolves once it answers. */
export async function mountLazyFs(backing: string, mountpoint: string, options: { seed?: number } = {}): Promise<LazyMount> {
  const socketPath = `${backing}.lazyfs.sock`;
  const args = [LAZYFS, backing, mountpoint, socketPath, ...(options.seed !== undefined ? ['--seed', String(options.seed)] : [])];
  const child: ChildProcess = spawn(PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((res) => child.on('exit', () => res()));
  try {
    await until('lazyfs to mount', () => {
      if (child.exitCode !== null) throw new Error(`lazyfs exited (${child.exitCode}): ${log}`);
      return isMounted(mountpoint) && existsSync(socketPath);
    }, 10_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  const control = (command: string): Promise<Record<string, number | boolean>> =>
    new Promise((res, rej) => {
      const conn = createConnection(socketPath);
      let text = '';
      const timer = setTimeout(() => (conn.destroy(), rej(new Error(`lazyfs control "${command}" timed out`))), 10_000);
      conn.on('data', (d: Buffer) => {
        text += d.toString();
        if (!text.includes('\n')) return;
        clearTimeout(timer);
        conn.end();
        const answer = JSON.parse(text) as Record<string, number | boolean>;
        if ('error' in answer) rej(new Error(`lazyfs: ${String(answer.error)}`));
        else res(answer);
      });
      conn.on('error', (err) => (clearTimeout(timer), rej(err)));
      conn.write(`${command}\n`);
    });
  const unmount = async (): Promise<void> => {
    if (isMounted(mountpoint)) {
      let result = spawnSync('umount', [mountpoint], { encoding: 'utf8' });
      if (result.status !== 0) result = spawnSync('umount', ['-l', mountpoint], { encoding: 'utf8' });
      if (result.status !== 0) throw new Error(`umount ${mountpoint}: ${result.stderr}`);
    }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((res) => (timer = setTimeout(() => res('late'), 10_000)));
    if ((await Promise.race([exited, late])) === 'late') child.kill('SIGKILL');
    clearTimeout(timer);
  };
  return { mountpoint, control, unmount, log: () => log };
}

/**
 * `dbx start --foreground` in its own mount namespace with a fresh boot id. The wrapper execs, so
 * the child pid is the server's own (the pid file check and SIGKILL reach the server itself).
 */
export async function spawnServerFreshBoot(dataDir: string, options: { env?: Record<string, string> } = {}): Promise<SpawnedServer> {
  const script = 'mount --bind /proc/sys/kernel/random/uuid /proc/sys/kernel/random/boot_id && exec "$@"';
  const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', process.execPath, DBX_BIN, 'start', '--foreground', '--data-dir', dataDir, '--port', '0'], {
    env: { ...process.env, EVENTDBX_LOG_LEVEL: 'warn', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const captured = captureChild(child);
  const { exited } = captured;
  let port = 0;
  try {
    await until('the server to answer /health', () => {
      if (child.exitCode !== null) throw new Error(`server exited before it was ready (code ${child.exitCode}): ${captured.stderr()}`);
      try {
        const info = JSON.parse(readFileSync(join(dataDir, 'server.pid'), 'utf8')) as { pid: number; port: number };
        if (info.pid === child.pid && info.port > 0) port = info.port;
      } catch {
        // not written yet
      }
      return port > 0;
    }, 30_000);
    const health = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(10_000) });
    if (!health.ok) throw new Error(`/health answered ${health.status}`);
  } catch (e) {
    child.kill('SIGKILL');
    await exited;
    throw e;
  }
  return spawnedServer(child, dataDir, port, captured);
}

export interface Ack {
  type: string;
  id: string;
  version: number;
  hash: string;
  /** Date.now() when the answer arrived. */
  at_ms: number;
  /** The event's Snowflake id: within one worker, ids rise in commit order (prepared and committed in turn). */
  event_id: string;
}

export type Durability = 'sync' | 'async';

/** The Snowflake's 10 worker bits (DESIGN §3): commit order is per worker environment. */
function workerBits(eventId: string): bigint {
  return (BigInt(eventId) >> 12n) & 0x3ffn;
}

/**
 * Checks what survived a cut against what was acknowledged. `sync`: every acknowledged event is
 * there with the same hash. `async`: per aggregate, the acknowledged events still there are a
 * prefix (same hashes), any missing ones were acknowledged within `lossWindowMs` before the cut,
 * and the missing ones are a suffix of each worker's commits (LMDB commits in order: a durable
 * commit makes every earlier one durable), judged by event id, which a worker hands out in commit
 * order (the time an answer reached its client is no order: connections lag each other by tens of
 * ms under load).
 * Always: versions 1..n with no gap, head version n, /verify valid. Returns one line per problem
 * and the acknowledged events that are gone (async only; later writes reuse their versions).
 */
export async function checkSurvivors(
  server: Pick<SpawnedServer, 'request'>,
  acks: Ack[],
  options: { durability: Durability; cutAtMs: number; lossWindowMs: number },
): Promise<{ problems: string[]; lost: Ack[] }> {
  const byAggregate = new Map<string, Ack[]>();
  for (const ack of acks) {
    const key = `${ack.type}/${ack.id}`;
    byAggregate.set(key, [...(byAggregate.get(key) ?? []), ack]);
  }
  const problems: string[] = [];
  const lost: Ack[] = [];
  const kept: Ack[] = [];
  const keys = [...byAggregate.keys()];
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < keys.length) {
      const key = keys[next++] as string;
      const hashes: string[] = [];
      let cursor: string | null = null;
      do {
        const res: { status: number; body: any } = await server.request('GET', `/v1/aggregates/${key}/events?take=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        if (res.status === 404 && hashes.length === 0) break;
        if (res.status !== 200) {
          problems.push(`${key}: events answered ${res.status} ${JSON.stringify(res.body)}`);
          break;
        }
        for (const event of res.body.items as { version: number; hash: string }[]) {
          if (event.version !== hashes.length + 1) problems.push(`${key}: version ${event.version} after ${hashes.length}`);
          hashes.push(event.hash);
        }
        cursor = res.body.next_cursor;
      } while (cursor);
      for (const ack of byAggregate.get(key) ?? []) {
        const stored = hashes[ack.version - 1];
        if (stored === ack.hash) {
          kept.push(ack);
          continue;
        }
        if (stored !== undefined) problems.push(`${key}@${ack.version}: hash changed (forked history)`);
        else if (options.durability === 'sync') problems.push(`${key}@${ack.version}: acknowledged, lost (sync)`);
        else if (ack.at_ms < options.cutAtMs - options.lossWindowMs) problems.push(`${key}@${ack.version}: lost, acknowledged ${options.cutAtMs - ack.at_ms} ms before the cut`);
        if (stored === undefined) lost.push(ack);
      }
      if (hashes.length === 0) continue;
      const head = await server.request('GET', `/v1/aggregates/${key}`);
      if (head.body?.version !== hashes.length) problems.push(`${key}: head version ${head.body?.version}, ${hashes.length} events`);
      const verify = await server.request('GET', `/v1/aggregates/${key}/verify`);
      if (verify.body?.valid !== true) problems.push(`${key}: verify ${JSON.stringify(verify.body)}`);
    }
  }));
  for (const worker of new Set(lost.map((a) => workerBits(a.event_id)))) {
    const firstLost = lost
      .filter((a) => workerBits(a.event_id) === worker)
      .map((a) => BigInt(a.event_id))
      .reduce((min, id) => (id < min ? id : min));
    const later = kept.filter((a) => workerBits(a.event_id) === worker && BigInt(a.event_id) > firstLost);
    for (const ack of later.slice(0, 5)) problems.push(`${ack.type}/${ack.id}@${ack.version}: survived, committed after a lost event (event id ${ack.event_id} > ${firstLost}: the loss is not a suffix)`);
  }
  return { problems, lost };
}

/** `writers` clients append to their own and to shared aggregates until `stop.now`; acks are recorded. */
export function startWriters(server: Pick<SpawnedServer, 'request'>, writers: number, stop: { now: boolean }, acks: Ack[], type = 'pc'): Promise<number>[] {
  return Array.from({ length: writers }, async (_, index) => {
    let failed = 0;
    for (let n = 0; !stop.now; n++) {
      const id = n % 2 === 0 ? `own-${index}` : `shared-${(index + n) % 4}`;
      try {
        const res = await server.request('POST', `/v1/aggregates/${type}/${id}/events`, { event_type: 'ticked', payload: { writer: index, n } });
        if (res.status === 201) acks.push({ type, id, version: res.body.version, hash: res.body.hash, at_ms: Date.now(), event_id: res.body.metadata.event_id });
        else failed++;
      } catch {
        failed++; // the server is gone: nothing acknowledged
        if (stop.now) break;
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    return failed;
  });
}
