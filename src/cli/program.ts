/**
 * The whole `dbx` program, every command group loaded: for help, completion and a name that is no
 * command. `dbx <command>` loads only the group it names (command-groups.ts).
 */
import type { Command } from 'commander';
import { aggregateCommand } from './commands-aggregate.js';
import { configCommand } from './commands-config.js';
import { eventsCommand } from './commands-events.js';
import { importCommand } from './commands-import.js';
import { pluginCommand } from './commands-plugin.js';
import { proofCommand } from './commands-proof.js';
import { queueCommand } from './commands-queue.js';
import { schemaCommand } from './commands-schema.js';
import { destroyCommand, restartCommand, startCommand, statusCommand, stopCommand } from './commands-server.js';
import { tokenCommand } from './commands-token.js';
import { doctorCommand } from './commands-doctor.js';
import { completionCommand } from './completion.js';
import { baseProgram, finishProgram } from './program-base.js';
import { tenantCommand } from './commands-tenant.js';

export function buildProgram(): Command {
  const program = baseProgram();
  return finishProgram(program, [
    startCommand(),
    stopCommand(),
    statusCommand(),
    restartCommand(),
    destroyCommand(),
    configCommand(),
    tokenCommand(),
    aggregateCommand(),
    eventsCommand(),
    importCommand(),
    proofCommand(),
    schemaCommand(),
    pluginCommand(),
    queueCommand(),
    tenantCommand(),
    doctorCommand(),
    completionCommand(() => program),
  ]);
}
