#!/usr/bin/env node
// Builds the Orthanc plugin folder of a provider package: dist/plugin/<lib>.so (the native shim,
// compiled with the provider's identity) next to dist/plugin/gateway.mjs (the bundled gateway).
// Run in the package directory: `oos-build-artifact --provider <aws|azure|google|filesystem>`.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const PROVIDERS = {
  aws: {
    library: 'libOrthancAwsS3Storage.so',
    name: 'AWS S3 Storage',
    section: 'AwsS3Storage',
    description: 'Stores the Orthanc storage area in AWS S3 (TypeScript gateway)',
    entry: 'dist/gateway.js',
  },
  azure: {
    library: 'libOrthancAzureBlobStorage.so',
    name: 'Azure Blob Storage',
    section: 'AzureBlobStorage',
    legacySection: 'BlobStorage',
    description: 'Stores the Orthanc storage area in Azure Blob Storage (TypeScript gateway)',
    entry: 'dist/gateway.js',
  },
  google: {
    library: 'libOrthancGoogleCloudStorage.so',
    name: 'Google Cloud Storage',
    section: 'GoogleCloudStorage',
    description: 'Stores the Orthanc storage area in Google Cloud Storage (TypeScript gateway)',
    entry: 'dist/gateway.js',
  },
  filesystem: {
    library: 'libOrthancFileSystemObjectStorage.so',
    name: 'File System Object Storage',
    section: 'FileSystemObjectStorage',
    description: 'Stores the Orthanc storage area through the object-storage gateway on a local directory',
    entry: 'dist/gateway/filesystem-gateway.js',
  },
};

const ORTHANC_INCLUDE = '/usr/include/orthanc';
const here = dirname(fileURLToPath(import.meta.url));
const nativeDir = resolve(here, '../native');
/** Every C file of the shim, in a stable order (the headers sit next to them). */
const shimSources = readdirSync(nativeDir)
  .filter((name) => name.endsWith('.c'))
  .sort()
  .map((name) => join(nativeDir, name));

/**
 * UMD builds whose factory require()s its own files defeat bundling (jsonc-parser's main).
 * Serve their ESM build instead, with a default export like Node's CommonJS interop gives.
 */
const UMD_PACKAGES_WITH_ESM = { 'jsonc-parser': 'jsonc-parser/lib/esm/main.js' };
const preferEsmBuilds = {
  name: 'prefer-esm-builds',
  setup(build) {
    const names = Object.keys(UMD_PACKAGES_WITH_ESM).map((name) => name.replace(/[-/]/g, '\\$&'));
    build.onResolve({ filter: new RegExp(`^(${names.join('|')})$`) }, (args) => ({
      path: args.path,
      namespace: 'prefer-esm',
      pluginData: { resolveDir: args.resolveDir },
    }));
    build.onLoad({ filter: /.*/, namespace: 'prefer-esm' }, (args) => {
      const esm = JSON.stringify(UMD_PACKAGES_WITH_ESM[args.path]);
      return {
        contents: `import * as all from ${esm}; export * from ${esm}; export default all;`,
        resolveDir: args.pluginData.resolveDir,
        loader: 'js',
      };
    });
  },
};

function fail(message) {
  console.error(`oos-build-artifact: ${message}`);
  process.exit(1);
}

/** A C string literal for a -D define (passed through execFile: no shell quoting involved). */
function cString(value) {
  if (!/^[\x20-\x7e]*$/.test(value)) fail(`value not printable ASCII: ${value}`);
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function compilerArguments(identity, version, output) {
  const defines = {
    OOS_PLUGIN_NAME: identity.name,
    OOS_PLUGIN_VERSION: version,
    OOS_PLUGIN_DESCRIPTION: identity.description,
    OOS_PROVIDER: identity.provider,
    OOS_SECTION: identity.section,
    ...(identity.legacySection ? { OOS_LEGACY_SECTION: identity.legacySection } : {}),
  };
  return [
    '-shared',
    '-fPIC',
    '-O2',
    '-Wall',
    '-Wextra',
    '-Werror',
    '-pthread',
    `-I${ORTHANC_INCLUDE}`,
    ...Object.entries(defines).map(([key, value]) => `-D${key}=${cString(value)}`),
    '-o',
    output,
    ...shimSources,
  ];
}

async function main() {
  const { values } = parseArgs({
    options: { provider: { type: 'string' }, help: { type: 'boolean' } },
  });
  if (values.help) {
    console.log(
      'usage: oos-build-artifact --provider <aws|azure|google|filesystem>  (run in the package directory)',
    );
    return;
  }
  const provider = values.provider;
  const identity = PROVIDERS[provider];
  if (!identity)
    fail(`--provider must be one of ${Object.keys(PROVIDERS).join(', ')} (got ${provider ?? 'nothing'})`);

  const packageDir = process.cwd();
  const packageJson = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));
  const entry = join(packageDir, identity.entry);
  if (!existsSync(entry)) fail(`${entry} is missing: run tsc first`);
  if (!existsSync(join(ORTHANC_INCLUDE, 'OrthancCPlugin.h'))) {
    fail(
      `${ORTHANC_INCLUDE}/OrthancCPlugin.h is missing: install Debian's orthanc-dev (apt-get install orthanc-dev)`,
    );
  }

  // Build aside, then rename into place: an Orthanc starting meanwhile never sees a half-built folder.
  const outDir = join(packageDir, 'dist', 'plugin');
  const stagingDir = join(packageDir, 'dist', `.plugin-staging-${process.pid}`);
  rmSync(stagingDir, { recursive: true, force: true });
  mkdirSync(stagingDir, { recursive: true });
  mkdirSync(outDir, { recursive: true });

  const { build } = await import('esbuild');
  await build({
    entryPoints: [entry],
    outfile: join(stagingDir, 'gateway.mjs'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    legalComments: 'none',
    logLevel: 'warning',
    plugins: [preferEsmBuilds],
    banner: {
      js: "import { createRequire as __oosCreateRequire } from 'node:module'; const require = __oosCreateRequire(import.meta.url);",
    },
  });

  const library = join(stagingDir, identity.library);
  try {
    execFileSync(
      process.env.CC || 'cc',
      compilerArguments({ ...identity, provider }, packageJson.version, library),
      {
        stdio: 'inherit',
      },
    );
  } catch (error) {
    rmSync(stagingDir, { recursive: true, force: true });
    fail(
      `compiling ${nativeDir}/*.c failed (${error.code === 'ENOENT' ? 'no C compiler: install gcc' : error.message})`,
    );
  }
  for (const file of ['gateway.mjs', identity.library])
    renameSync(join(stagingDir, file), join(outDir, file));
  rmSync(stagingDir, { recursive: true, force: true });
  console.log(
    `oos-build-artifact: ${provider} plugin ${packageJson.version} -> ${outDir}/{${identity.library},gateway.mjs}`,
  );
}

await main();
