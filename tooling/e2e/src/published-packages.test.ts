// What npm users get: each publishable package is packed (`pnpm pack`, as `pnpm publish` would),
// and its tarball must hold exactly what its README's "Files in this package" promises, no bench
// or test code, and only imports its package.json declares. Needs the packages built.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from './harness/repo.js';

const PUBLISHED = ['core', 'aws', 'azure', 'google'] as const;

interface PackageJson {
  name: string;
  private?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

/** The backquoted paths listed under the README's "## Files in this package" heading. */
export function promisedFiles(readme: string): string[] {
  const section = /^## Files in this package\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(readme)?.[1] ?? '';
  return [...section.matchAll(/^- (.*)$/gm)].flatMap((line) =>
    [...line[1]!.split(':')[0]!.matchAll(/`([^`]+)`/g)].map((match) => match[1]!),
  );
}

/** A glob (`*` within a path segment, `**` across) as an anchored regular expression. */
export function globToRegExp(glob: string): RegExp {
  let pattern = '';
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i]!;
    if (glob.startsWith('**/', i)) {
      pattern += '(?:.*/)?';
      i += 2;
    } else if (char === '*') pattern += '[^/]*';
    else pattern += char.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${pattern}$`);
}

/** Bare module specifiers a JavaScript file imports, by package name (`@scope/name` or `name`). */
export function importedPackages(source: string): string[] {
  const specifiers = [
    ...source.matchAll(/(?:^|[\s;])(?:import|export)\s[^'"`]*?\sfrom\s*['"]([^'"]+)['"]/g),
    ...source.matchAll(/(?:^|[\s;])import\s*['"]([^'"]+)['"]/g),
    ...source.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
    ...source.matchAll(/\brequire\(\s*['"]([^'"]+)['"]\s*\)/g),
  ].map((match) => match[1]!);
  const builtins = new Set(builtinModules);
  return [
    ...new Set(
      specifiers
        .filter((s) => !s.startsWith('.') && !s.startsWith('/') && !s.startsWith('node:') && !builtins.has(s))
        .map((s) =>
          s
            .split('/')
            .slice(0, s.startsWith('@') ? 2 : 1)
            .join('/'),
        ),
    ),
  ].sort();
}

describe('README helpers', () => {
  test('promisedFiles reads the backquoted paths of the list, before the colon', () => {
    const readme =
      '# x\n\n## Files in this package\n\n- `a/b.js`, `c/*.d.ts`: the `lib`\n- `README.md`\n\n## Next\n- `no`\n';
    expect(promisedFiles(readme)).toEqual(['a/b.js', 'c/*.d.ts', 'README.md']);
  });

  test('globToRegExp keeps * within a segment and lets ** cross them', () => {
    expect(globToRegExp('dist/*.js').test('dist/a.js')).toBe(true);
    expect(globToRegExp('dist/*.js').test('dist/x/a.js')).toBe(false);
    expect(globToRegExp('dist/**/*.js').test('dist/x/y/a.js')).toBe(true);
    expect(globToRegExp('dist/**/*.js').test('dist/a.js')).toBe(true);
  });

  test('importedPackages finds bare imports, requires and dynamic imports, not builtins', () => {
    const source = `import a from '@s/p/sub';\nexport { b } from "q";\nimport 'side';\nconst c = await import('r');\nrequire("fs"); import x from 'node:path'; import y from './local.js';`;
    expect(importedPackages(source)).toEqual(['@s/p', 'q', 'r', 'side']);
  });
});

describe.each(['aws', 'azure', 'google'] as const)('`orthanc-object-storage-%s install DIR`', (provider) => {
  test('writes the plugin folder with its runtime and prints the "Plugins" entry and a section', () => {
    const target = mkdtempSync(path.join(os.tmpdir(), `oos-install-${provider}-`));
    try {
      const bin = path.join(repoRoot(), 'packages', provider, 'dist', 'install.js');
      const printed = execFileSync(process.execPath, [bin, 'install', path.join(target, 'plugin')], {
        encoding: 'utf8',
      });
      const folder = path.join(target, 'plugin');
      const files = readdirSync(folder).sort();
      const library = files.find((file) => file.endsWith('.so'))!;
      expect(files).toEqual(['THIRD-PARTY-NOTICES.txt', 'gateway.mjs', library, 'node'].sort());
      expect(execFileSync(path.join(folder, 'node'), ['--version'], { encoding: 'utf8' }).trim()).toMatch(
        /^v24\./,
      );
      const snippet = JSON.parse(printed.slice(printed.indexOf('{'), printed.lastIndexOf('}') + 1)) as Record<
        string,
        unknown
      >;
      expect(snippet.Plugins).toEqual([path.join(folder, library)]);
      expect(Object.keys(snippet)).toHaveLength(2);
    } finally {
      rmSync(target, { recursive: true, force: true });
    }
  });

  test('refuses wrong usage with status 2', () => {
    const bin = path.join(repoRoot(), 'packages', provider, 'dist', 'install.js');
    const run = spawnSync(process.execPath, [bin, 'install'], { encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('expected "install DIR"');
  });
});

describe.each(PUBLISHED)('the published package %s', (name) => {
  const packageDir = path.join(repoRoot(), 'packages', name);
  let files: string[];
  let unpacked: string;
  const manifest = JSON.parse(readFileSync(path.join(packageDir, 'package.json'), 'utf8')) as PackageJson;

  beforeAll(() => {
    unpacked = mkdtempSync(path.join(os.tmpdir(), `oos-pack-${name}-`));
    const output = execFileSync('pnpm', ['pack', '--pack-destination', unpacked], {
      cwd: packageDir,
      encoding: 'utf8',
    });
    const tarball = output.trim().split('\n').pop()!.trim();
    execFileSync('tar', [
      '-xzf',
      path.isAbsolute(tarball) ? tarball : path.join(unpacked, path.basename(tarball)),
      '-C',
      unpacked,
    ]);
    files = execFileSync('find', ['.', '-type', 'f'], {
      cwd: path.join(unpacked, 'package'),
      encoding: 'utf8',
    })
      .split('\n')
      .filter(Boolean)
      .map((file) => file.replace(/^\.\//, ''))
      .sort();
  }, 60_000);

  afterAll(() => rmSync(unpacked, { recursive: true, force: true }));

  test('is publishable: not private, with a README', () => {
    expect(manifest.private).not.toBe(true);
    expect(files).toContain('README.md');
  });

  test('holds exactly the files its README lists', () => {
    const promised = promisedFiles(readFileSync(path.join(packageDir, 'README.md'), 'utf8'));
    expect(promised.length).toBeGreaterThan(2);
    const patterns = promised.map(globToRegExp);
    expect(files.filter((file) => !patterns.some((pattern) => pattern.test(file)))).toEqual([]);
    expect(promised.filter((glob, i) => !files.some((file) => patterns[i]!.test(file)))).toEqual([]);
  });

  test('holds no bench, test or source-map files', () => {
    expect(
      files.filter((file) =>
        /(^|\/)(bench|__tests__)\/|\.test\.|\.map$|memory-bucket|shim-client/.test(file),
      ),
    ).toEqual([]);
  });

  test('declares every package its code imports', () => {
    const declared = new Set([
      manifest.name,
      ...Object.keys(manifest.dependencies ?? {}),
      ...Object.keys(manifest.optionalDependencies ?? {}),
      ...Object.keys(manifest.peerDependencies ?? {}),
    ]);
    // The gateway bundle resolves everything at build time (the e2e suites run it from the
    // release folder, with no node_modules); its text still names optional SDK modules in
    // messages and guarded requires, which are not imports of the package.
    const undeclared = files
      .filter((file) => file.endsWith('.js'))
      .flatMap((file) =>
        importedPackages(readFileSync(path.join(unpacked, 'package', file), 'utf8'))
          .filter((imported) => !declared.has(imported))
          .map((imported) => `${file}: ${imported}`),
      );
    expect(undeclared).toEqual([]);
  });
});
