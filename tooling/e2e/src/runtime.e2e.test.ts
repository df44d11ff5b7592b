// What the shim takes from Orthanc's side: which Node.js runs the gateway (refusing one older
// than 22) and the configuration's path. A real Orthanc with core's file-system plugin
// (dist/plugin, no runtime beside it), so NodeExecutable and PATH decide.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { newUid, writeSyntheticInstance } from './harness/dicom/synthetic.js';
import { OrthancServer } from './harness/orthanc.js';
import { artifactDir, nodeExecutable } from './harness/repo.js';
import { pathWithoutNode } from './harness/release.js';

const PLUGIN = path.join(artifactDir('core'), 'libOrthancFileSystemObjectStorage.so');
const PLUGIN_NAME = 'File System Object Storage';

let workDir: string;
const servers: OrthancServer[] = [];

beforeAll(() => {
  workDir = mkdtempSync(path.join(os.tmpdir(), 'oos-e2e-runtime-'));
});

afterAll(async () => {
  for (const server of servers) await server.stop();
  rmSync(workDir, { recursive: true, force: true });
});

/** A stand-in runtime that reports `version` for --version, as an old Node.js would. */
function fakeNode(dir: string, version: string): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'node');
  writeFileSync(file, `#!/bin/sh\necho ${version}\n`, { mode: 0o755 });
  return file;
}

/** Orthanc with the plugin's section; resolves with the plugin's error lines once it exits. */
async function refusedStart(
  label: string,
  section: Record<string, unknown>,
  env?: NodeJS.ProcessEnv,
): Promise<string[]> {
  const orthanc = await OrthancServer.create({
    workDir: path.join(workDir, label),
    plugins: [PLUGIN],
    configuration: {
      FileSystemObjectStorage: { Directory: path.join(workDir, label, 'objects'), ...section },
    },
    ...(env && { env }),
  });
  servers.push(orthanc);
  orthanc.spawn();
  const status = await orthanc.waitForExit(30_000);
  expect(status.code === 0 && status.signal === null).toBe(false);
  const lines = orthanc.readLog().split('\n');
  expect(lines.some((line) => line.includes('storage area registered'))).toBe(false);
  return lines.filter((line) => line.startsWith('E') && line.includes(`${PLUGIN_NAME}:`));
}

test('NodeExecutable older than 22: Orthanc refuses to start with one error naming it and the version', async () => {
  const old = fakeNode(path.join(workDir, 'node-20'), 'v20.11.1');
  const errors = await refusedStart('old-configured', { NodeExecutable: old });
  expect(errors).toHaveLength(1);
  expect(errors[0]).toContain(
    `"${old}" ("NodeExecutable" of the "FileSystemObjectStorage" section) is v20.11.1`,
  );
  expect(errors[0]).toContain('needs Node.js 22 or later');
});

test('node on PATH older than 22 (no NodeExecutable, no runtime beside): one error naming PATH', async () => {
  const dir = path.join(workDir, 'path-18');
  fakeNode(dir, 'v18.19.0');
  const errors = await refusedStart('old-path', {}, { ...process.env, PATH: `${dir}:${pathWithoutNode()}` });
  expect(errors).toHaveLength(1);
  expect(errors[0]).toContain(`"node" on Orthanc's PATH`);
  expect(errors[0]).toContain('is v18.19.0');
});

test('no Node.js at all: one error saying so and what to set', async () => {
  const errors = await refusedStart('no-node', {}, { ...process.env, PATH: pathWithoutNode() });
  expect(errors).toHaveLength(1);
  expect(errors[0]).toMatch(
    /cannot run the Node\.js runtime "node" on Orthanc's PATH .*No such file or directory/,
  );
  expect(errors[0]).toContain('"NodeExecutable"');
});

const systemNode = (() => {
  try {
    const found = execFileSync('sh', ['-c', 'command -v node'], {
      encoding: 'utf8',
      env: { PATH: '/usr/local/bin:/usr/bin:/bin' },
    }).trim();
    const version = execFileSync(found, ['--version'], { encoding: 'utf8' }).trim();
    return Number(/^v(\d+)\./.exec(version)?.[1]) < 22 ? { found, version } : undefined;
  } catch {
    return undefined;
  }
})();

(systemNode ? test : test.skip)(
  `the system's own old Node.js (${systemNode?.version ?? 'none'}) is refused`,
  async () => {
    const errors = await refusedStart('system-node', { NodeExecutable: systemNode!.found });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(`is ${systemNode!.version}`);
  },
);

test('NodeExecutable of Node 24 starts the gateway and says which runtime it uses', async () => {
  const orthanc = await OrthancServer.create({
    workDir: path.join(workDir, 'node-24'),
    plugins: [PLUGIN],
    configuration: {
      FileSystemObjectStorage: {
        Directory: path.join(workDir, 'node-24', 'objects'),
        NodeExecutable: nodeExecutable(),
      },
    },
  });
  servers.push(orthanc);
  await orthanc.start();
  expect(orthanc.readLog()).toMatch(
    /gateway runtime: Node\.js v24\.\d+\.\d+, "[^"]+" \("NodeExecutable" of the/,
  );
  expect(
    orthanc
      .readLog()
      .split('\n')
      .filter((line) => line.startsWith('E')),
  ).toEqual([]);
  await orthanc.stop();
});

test("a relative StorageDirectory is the configuration file's folder's, as for Orthanc itself", async () => {
  const label = 'relative-storage';
  const elsewhere = path.join(workDir, label, 'cwd');
  mkdirSync(elsewhere, { recursive: true });
  const orthanc = await OrthancServer.create({
    workDir: path.join(workDir, label),
    cwd: elsewhere,
    plugins: [PLUGIN],
    configuration: {
      StorageDirectory: 'RelativeStorage',
      FileSystemObjectStorage: {
        Directory: path.join(workDir, label, 'objects'),
        HybridMode: 'WriteToFileSystem',
        NodeExecutable: nodeExecutable(),
      },
    },
  });
  servers.push(orthanc);
  await orthanc.start();
  const uid = newUid();
  const written = await writeSyntheticInstance(
    {
      patientId: 'E2E-RELATIVE',
      patientName: 'E2E^Relative',
      studyInstanceUid: uid + '.1',
      seriesInstanceUid: uid + '.2',
      sopInstanceUid: uid + '.3',
      seriesNumber: 1,
      instanceNumber: 1,
      rows: 32,
      columns: 32,
      bitsAllocated: 8,
      seed: 7,
    },
    path.join(workDir, label, 'instance.dcm'),
  );
  const upload = await orthanc.client.uploadFile(written.file);
  const uuid = await orthanc.client.attachmentUuid(upload.ID);
  await orthanc.stop();
  const beside = path.join(workDir, label, 'RelativeStorage', uuid.slice(0, 2), uuid.slice(2, 4), uuid);
  expect(existsSync(beside)).toBe(true);
  expect(existsSync(path.join(elsewhere, 'RelativeStorage'))).toBe(false);
});
