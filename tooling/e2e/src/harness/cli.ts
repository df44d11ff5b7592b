// The operator CLI (`orthanc-object-storage`, built by core) run as operators run it: a child
// process on Node 24, its JSON summary on stdout.
import { execFile, type ChildProcess } from 'node:child_process';
import { coreCliPath, nodeExecutable } from './repo.js';

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run the CLI to its end. `started` gets the child (e.g. to send it SIGINT). */
export function runCli(args: string[], started?: (child: ChildProcess) => void): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      nodeExecutable(),
      [coreCliPath(), ...args],
      { env: { ...process.env }, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
    started?.(child);
  });
}

/** Run a command with `--json` and parse its summary. */
export async function runCliJson<T>(
  args: string[],
  started?: (child: ChildProcess) => void,
): Promise<{ code: number; summary: T; stderr: string }> {
  const { code, stdout, stderr } = await runCli([...args, '--json'], started);
  if (stdout.trim() === '') throw new Error(`${args[0]} printed nothing (exit ${code}): ${stderr}`);
  return { code, summary: JSON.parse(stdout) as T, stderr };
}
