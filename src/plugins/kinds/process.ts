/**
 * `process` plugin kind: one supervised child process per deliverer (DESIGN §8).
 *
 * Protocol (newline-delimited JSON, UTF-8):
 *   stdin  ← one line per job: `{"job_id":"…","event_id":"…","body":{…}}`
 *   stdout → one line per job, in any order: `{"ack":"<job_id>"}` completes it,
 *            `{"nack":"<job_id>","error":"<why>"}` fails it (retried later by the queue).
 *            Any other stdout line is logged, never taken as an answer.
 *   stderr → logged line by line.
 * Several jobs may be in flight; answers are matched by `job_id`. A job unanswered within
 * `timeout_ms` fails (a late answer is ignored). The child should exit when stdin closes.
 *
 * Supervision: when the child dies, the jobs it had been sent fail, and it is restarted after
 * 100 ms, doubling up to 30 s; the delay starts again at 100 ms once a child has stayed up 30 s.
 * Jobs that arrive while it is down wait for the restart (within their own timeout).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { isAbsolute, resolve } from 'node:path';
import type { z } from 'zod';
import type { Deliverer, Delivery, processOptions } from '../types.js';
import type { DelivererContext } from './context.js';
import { LineSplitter, checkFailed, excerpt, shortReason } from './wire.js';

type ProcessOptions = z.output<typeof processOptions>;

const BACKOFF_START_MS = 100;
const BACKOFF_MAX_MS = 30_000;
const STABLE_UPTIME_MS = 30_000;
const IN_FLIGHT_MAX = 1024;
const CHECK_ALIVE_MS = 200;
/** After `exit`, how long to wait for the child's pipes to close (acks still buffered) before treating it as dead. */
const EXIT_PIPES_GRACE_MS = 200;
const CLOSE_STDIN_GRACE_MS = 1000;
const CLOSE_TERM_GRACE_MS = 1000;
const LOG_LINE_CHARS = 1024;
const NACK_QUOTE_CHARS = 256;
/**
 * The only server variables a child inherits (plus `env`, plus EVENTDBX_PLUGIN_NAME): the server's
 * environment may hold secrets a plugin program has no business reading.
 */
const INHERITED_ENV = ['PATH', 'HOME', 'USER', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'SYSTEMROOT'];

interface Job {
  line: string;
  sent: boolean;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export type ChildAnswer = { jobId: string; ok: true } | { jobId: string; ok: false; error: string };

/** A stdout line as an answer, or undefined when it is not one. */
export function readAnswer(line: string): ChildAnswer | undefined {
  if (!line.trimStart().startsWith('{')) return undefined;
  try {
    const msg = JSON.parse(line) as { ack?: unknown; nack?: unknown; error?: unknown };
    if (typeof msg.ack === 'string') return { jobId: msg.ack, ok: true };
    if (typeof msg.nack === 'string') return { jobId: msg.nack, ok: false, error: typeof msg.error === 'string' ? msg.error : 'no reason given' };
  } catch {
    // not JSON: plain output
  }
  return undefined;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `was killed by ${signal}` : `exited with code ${code ?? 'unknown'}`;
}

function childEnv(options: ProcessOptions, name: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const key of INHERITED_ENV) if (process.env[key] !== undefined) env[key] = process.env[key];
  return { ...env, ...options.env, EVENTDBX_PLUGIN_NAME: name };
}

class Supervisor {
  readonly jobs = new Map<string, Job>();
  private child: ChildProcess | undefined;
  private childExited: Promise<void> = Promise.resolve();
  private running = false;
  private startedAt = 0;
  private backoffMs = BACKOFF_START_MS;
  private restartTimer: NodeJS.Timeout | undefined;
  private lastDeath = '';
  private closed = false;

  constructor(
    private readonly options: ProcessOptions,
    private readonly ctx: DelivererContext,
  ) {}

  deliver(delivery: Delivery): Promise<void> {
    if (this.closed) return Promise.reject(new Error('process plugin closed'));
    if (this.jobs.has(delivery.job_id)) return Promise.reject(new Error('process plugin job is already in flight'));
    if (this.jobs.size >= IN_FLIGHT_MAX) return Promise.reject(new Error('process plugin has too many jobs in flight'));
    const line = `${JSON.stringify({ job_id: delivery.job_id, event_id: delivery.body.event_id, body: delivery.body })}\n`;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.jobs.delete(delivery.job_id);
        reject(new Error(`process plugin job timed out after ${this.options.timeout_ms} ms`));
      }, this.options.timeout_ms);
      const job: Job = { line, sent: false, resolve, reject, timer };
      this.jobs.set(delivery.job_id, job);
      if (this.running) this.send(job);
      else this.ensureStarted();
    });
  }

  async check(): Promise<void> {
    if (this.closed) throw checkFailed(this.ctx.name, 'plugin closed');
    this.ensureStarted();
    const child = this.child;
    if (!child) throw checkFailed(this.ctx.name, `process ${this.lastDeath || 'is not running'}`);
    const upMs = this.running ? Date.now() - this.startedAt : 0;
    if (upMs < CHECK_ALIVE_MS) await new Promise((r) => setTimeout(r, CHECK_ALIVE_MS - upMs));
    if (this.child !== child || !this.running) throw checkFailed(this.ctx.name, `process ${this.lastDeath || 'did not start'}`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    this.failJobs((job) => !job.sent, 'process plugin closed');
    const child = this.child;
    if (child) {
      // Ending stdin is the polite stop; answers to jobs already sent are still taken meanwhile.
      child.stdin?.end();
      if (!(await this.exitedWithin(CLOSE_STDIN_GRACE_MS))) {
        child.kill('SIGTERM');
        if (!(await this.exitedWithin(CLOSE_TERM_GRACE_MS))) {
          child.kill('SIGKILL');
          await this.exitedWithin(CLOSE_TERM_GRACE_MS);
        }
      }
    }
    this.failJobs(() => true, 'process plugin closed');
  }

  private ensureStarted(): void {
    if (this.closed || this.child || this.restartTimer) return;
    this.spawnChild();
  }

  private spawnChild(): void {
    const cwd = this.options.working_dir === undefined ? this.ctx.dataDir : isAbsolute(this.options.working_dir) ? this.options.working_dir : resolve(this.ctx.dataDir, this.options.working_dir);
    const child = spawn(this.options.command, this.options.args, { cwd, env: childEnv(this.options, this.ctx.name), stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true });
    this.child = child;
    this.running = false;
    this.startedAt = 0;
    let dead = false;
    let markExited!: () => void;
    this.childExited = new Promise<void>((r) => (markExited = r));
    const died = (how: string) => {
      if (dead) return;
      dead = true;
      markExited();
      this.onDeath(child, how);
    };
    child.once('spawn', () => {
      if (dead) return;
      this.running = true;
      this.startedAt = Date.now();
      for (const job of this.jobs.values()) if (!job.sent) this.send(job);
    });
    child.on('error', (err) => {
      if (child.pid === undefined) died(`cannot be started (${shortReason(err)})`);
    });
    child.once('exit', (code, signal) => {
      const how = describeExit(code, signal);
      const grace = setTimeout(() => died(how), EXIT_PIPES_GRACE_MS);
      child.once('close', () => {
        clearTimeout(grace);
        died(how);
      });
    });
    child.stdin?.on('error', () => undefined); // EPIPE when it dies mid-write: handled as its exit
    const name = this.ctx.name;
    const out = new LineSplitter(
      (line) => this.onStdout(line),
      () => this.ctx.log('warn', `process plugin '${name}' wrote an over-long stdout line (dropped)`),
    );
    const err = new LineSplitter(
      (line) => this.ctx.log('warn', `process plugin '${name}' stderr: ${excerpt(line, LOG_LINE_CHARS)}`),
      () => this.ctx.log('warn', `process plugin '${name}' wrote an over-long stderr line (dropped)`),
    );
    child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
  }

  private send(job: Job): void {
    job.sent = true;
    this.child?.stdin?.write(job.line);
  }

  private onStdout(line: string): void {
    const answer = readAnswer(line);
    if (!answer) {
      if (line.trim()) this.ctx.log('info', `process plugin '${this.ctx.name}' stdout: ${excerpt(line, LOG_LINE_CHARS)}`);
      return;
    }
    const job = this.jobs.get(answer.jobId);
    if (!job) return; // timed out already, or not ours: a late answer changes nothing
    this.jobs.delete(answer.jobId);
    clearTimeout(job.timer);
    if (answer.ok) job.resolve();
    else job.reject(new Error(`process plugin refused the job: ${excerpt(answer.error, NACK_QUOTE_CHARS) || 'no reason given'}`));
  }

  private onDeath(child: ChildProcess, how: string): void {
    if (this.child !== child) return;
    const upMs = this.running ? Date.now() - this.startedAt : 0;
    this.child = undefined;
    this.running = false;
    this.lastDeath = how;
    this.failJobs((job) => job.sent, `process plugin ${how} before answering the job`);
    if (this.closed) return;
    if (upMs >= STABLE_UPTIME_MS) this.backoffMs = BACKOFF_START_MS;
    const delayMs = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
    this.ctx.log('warn', `process plugin '${this.ctx.name}' ${how}; restarting in ${delayMs} ms`);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.closed) this.spawnChild();
    }, delayMs);
    // A deliverer someone forgot to close must not keep the process alive by restarting forever.
    this.restartTimer.unref();
  }

  private failJobs(which: (job: Job) => boolean, message: string): void {
    for (const [id, job] of this.jobs) {
      if (!which(job)) continue;
      this.jobs.delete(id);
      clearTimeout(job.timer);
      job.reject(new Error(message));
    }
  }

  private async exitedWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const exited = await Promise.race([this.childExited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
    clearTimeout(timer);
    return exited;
  }
}

export function createProcessDeliverer(options: ProcessOptions, ctx: DelivererContext): Deliverer {
  const supervisor = new Supervisor(options, ctx);
  return {
    deliver: (delivery) => supervisor.deliver(delivery),
    check: () => supervisor.check(),
    close: () => supervisor.close(),
  };
}
