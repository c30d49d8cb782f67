/**
 * `dbx <command>` loads only the module that defines <command> (and what that imports): a command
 * group costs ~10–40 ms of parsing and evaluation, and a direct read must not pay for all fifteen.
 * Anything else — no command, `help`, `completion` (which lists them all), a name that is no
 * command (commander's "did you mean") — gets the whole program from program.ts.
 *
 * The factories are the ones program.ts calls, so a one-group program is the same subtree; the
 * start-up test checks that every top-level command is listed here.
 */
import type { Command } from 'commander';
import { baseProgram, finishProgram } from './program-base.js';

type Group = () => Promise<Command[]>;

const server: Group = async () => {
  const m = await import('./commands-server.js');
  return [m.startCommand(), m.stopCommand(), m.statusCommand(), m.restartCommand(), m.destroyCommand()];
};

export const COMMAND_GROUPS: Readonly<Record<string, Group>> = {
  start: server,
  stop: server,
  status: server,
  restart: server,
  destroy: server,
  config: async () => [(await import('./commands-config.js')).configCommand()],
  token: async () => [(await import('./commands-token.js')).tokenCommand()],
  aggregate: async () => [(await import('./commands-aggregate.js')).aggregateCommand()],
  events: async () => [(await import('./commands-events.js')).eventsCommand()],
  import: async () => [(await import('./commands-import.js')).importCommand()],
  proof: async () => [(await import('./commands-proof.js')).proofCommand()],
  schema: async () => [(await import('./commands-schema.js')).schemaCommand()],
  plugin: async () => [(await import('./commands-plugin.js')).pluginCommand()],
  queue: async () => [(await import('./commands-queue.js')).queueCommand()],
  tenant: async () => [(await import('./commands-tenant.js')).tenantCommand()],
  doctor: async () => [(await import('./commands-doctor.js')).doctorCommand()],
};

/** The program for these arguments (`process.argv.slice(2)`). */
export async function loadProgram(args: string[]): Promise<Command> {
  const name = args[0];
  const group = name !== undefined && Object.hasOwn(COMMAND_GROUPS, name) ? COMMAND_GROUPS[name] : undefined;
  if (group === undefined) return (await import('./program.js')).buildProgram();
  return finishProgram(baseProgram(), await group());
}
