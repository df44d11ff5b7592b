#!/usr/bin/env node
import { PROGRAM, UsageError } from './command.js';
import { commands } from './commands/index.js';

const topHelp = `Usage: ${PROGRAM} <command> [options]

Operator tools for the Orthanc object-storage plugins.

Commands:
${commands.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join('\n')}

Run \`${PROGRAM} <command> --help\` for a command's options.
`;

async function main(args: string[]): Promise<void> {
  const [name, ...rest] = args;
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(topHelp);
    return;
  }
  if (name === undefined) throw new UsageError('no command given');
  const command = commands.find((c) => c.name === name);
  if (command === undefined) {
    throw new UsageError(`unknown command '${name}' (commands: ${commands.map((c) => c.name).join(', ')})`);
  }
  // Before parsing: a command's --help works even beside arguments it would refuse.
  if (rest.some((arg) => arg === '--help' || arg === '-h')) {
    process.stdout.write(command.help);
    return;
  }
  try {
    await command.run(rest);
  } catch (error) {
    if (error instanceof Error) error.message = `${command.name}: ${error.message}`;
    throw error;
  }
}

/** One line on stderr, whatever the error: operators and scripts read it. */
function report(error: unknown): void {
  const message = (error instanceof Error ? error.message : String(error)).replace(/\s*[\r\n]+\s*/g, ' ');
  const hint = error instanceof UsageError ? ` (see ${PROGRAM} --help)` : '';
  process.stderr.write(`${PROGRAM}: ${message}${hint}\n`);
  process.exitCode = error instanceof UsageError ? 2 : 1;
}

let settled = false;
// A promise that never settles would otherwise let the process exit 0 with nothing done.
process.once('beforeExit', () => {
  if (!settled) report(new Error('internal error: the command stopped before it completed'));
});
main(process.argv.slice(2))
  .catch(report)
  .finally(() => {
    settled = true;
  });
