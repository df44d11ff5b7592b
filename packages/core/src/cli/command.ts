import { parseArgs, type ParseArgsConfig } from 'node:util';

export const PROGRAM = 'orthanc-object-storage';

/** A subcommand of `orthanc-object-storage`: one file each under `commands/`. */
export interface Command {
  readonly name: string;
  /** One line for the top-level help. */
  readonly summary: string;
  /** Full help text, printed by `<command> --help` (main.ts answers `--help`/`-h` itself). */
  readonly help: string;
  run(args: string[]): Promise<void>;
}

/** Wrong arguments: reported with a pointer to `--help`, exit code 2. */
export class UsageError extends Error {}

/** `parseArgs` (strict by default); argument errors become `UsageError`. */
export function parseCommandArgs<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Throws `UsageError` unless exactly the named positionals were given. */
export function expectPositionals(given: string[], names: readonly string[]): void {
  if (given.length !== names.length) {
    throw new UsageError(`expected ${names.length} argument(s) ${names.join(' ')}, got ${given.length}`);
  }
}
