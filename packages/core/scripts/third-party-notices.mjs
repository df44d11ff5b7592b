// THIRD-PARTY-NOTICES.txt of a plugin folder: the licence of every npm package bundled into the
// gateway (from esbuild's metafile), the legal comments esbuild extracted, and Node.js's licence.
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const LICENSE_FILE = /^(licen[cs]e|copying|notice)(\.|-|$)/i;

/** The package folder of a bundled input under node_modules (scoped or not), else undefined. */
function packageDirOf(input) {
  const marker = '/node_modules/';
  const absolute = resolve(input);
  const at = absolute.lastIndexOf(marker);
  if (at < 0) return undefined;
  const rest = absolute.slice(at + marker.length).split('/');
  const depth = rest[0].startsWith('@') ? 2 : 1;
  return join(absolute.slice(0, at + marker.length), ...rest.slice(0, depth));
}

function licenseTexts(dir) {
  return readdirSync(dir)
    .filter((name) => LICENSE_FILE.test(name))
    .sort()
    .map((name) => readFileSync(join(dir, name), 'utf8').trim());
}

function section(title, body) {
  return `${'='.repeat(78)}\n${title}\n${'='.repeat(78)}\n\n${body.trim()}\n\n`;
}

/**
 * Writes the notices. Every bundled package is listed with its licence field and the text of its
 * licence files; a package without one is listed with its licence field alone.
 */
export function writeNotices({ output, packageName, bundledInputs, legalComments, nodeRuntimeDir }) {
  const packages = new Map();
  for (const input of bundledInputs) {
    const dir = packageDirOf(input);
    if (dir === undefined || packages.has(dir)) continue;
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    packages.set(dir, manifest);
  }
  const byName = [...packages.entries()].sort(([, a], [, b]) => a.name.localeCompare(b.name));
  const nodeManifest = JSON.parse(readFileSync(join(nodeRuntimeDir, 'package.json'), 'utf8'));
  let text =
    `Third-party software in this plugin folder\n\n` +
    `${packageName} is licensed under AGPL-3.0-or-later. Its gateway (gateway.mjs) bundles the\n` +
    `${byName.length} npm packages listed below, and the folder may hold the Node.js runtime\n` +
    `(node, version ${nodeManifest.version.replace(/^v/, '')}), whose licence closes this file.\n\n` +
    byName.map(([, m]) => `- ${m.name} ${m.version} (${m.license ?? 'see below'})`).join('\n') +
    '\n\n';
  for (const [dir, manifest] of byName) {
    const texts = licenseTexts(dir);
    const body = texts.length > 0 ? texts.join('\n\n') : `License: ${manifest.license ?? 'not stated'}`;
    text += section(`${manifest.name} ${manifest.version} (${manifest.license ?? 'no licence field'})`, body);
  }
  if (existsSync(legalComments)) {
    const comments = readFileSync(legalComments, 'utf8').trim();
    if (comments) text += section('Legal comments found in the bundled code', comments);
    rmSync(legalComments);
  }
  text += section(`Node.js ${nodeManifest.version}`, readFileSync(join(nodeRuntimeDir, 'LICENSE'), 'utf8'));
  writeFileSync(output, text);
  return { packages: byName.length, file: output, dir: dirname(output) };
}
