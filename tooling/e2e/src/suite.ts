// The reusable end-to-end suite: a real Debian Orthanc with our plugin artifact against one backend.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { WriteFormat } from '@orthanc-object-storage/core';
import type { BackendStore, E2EBackend, MasterKeyFile } from './backends/backend.js';
import { generateCorpus, sha256File, sharedDicomCorpus, type CorpusFile } from './harness/dicom/corpus.js';
import { newUid, writeSyntheticInstance } from './harness/dicom/synthetic.js';
import { ensureOrthancInstalled } from './harness/install.js';
import { OrthancServer, type OrthancConfiguration } from './harness/orthanc.js';
import { mapConcurrent, retryFor, sleep } from './harness/parallel.js';
import { findGatewayPids, processExists } from './harness/proc.js';
import { pathWithoutNode, unpackRelease } from './harness/release.js';
import { coreCliPath, nodeExecutable } from './harness/repo.js';
import { OrthancHttpError, PNG_SIGNATURE, type OrthancClient, type UploadResult } from './harness/rest.js';

const execFileAsync = promisify(execFile);

export interface EndToEndOptions {
  /** Generated instances besides ../shared/dicom (default 300, from ~1 KiB to ~512 KiB). */
  readonly generatedInstances?: number;
  /** Pixel bytes of the one large instance (default 50 MiB). */
  readonly largeInstanceBytes?: number;
  /** Parallel REST clients (default 4). */
  readonly clients?: number;
}

/** Shared state of one describeEndToEnd run. */
interface SuiteContext {
  workDir: string;
  corpus: CorpusFile[];
  key: MasterKeyFile;
  keyText: string;
  servers: OrthancServer[];
  /** The library Orthanc loads: from the unpacked release tarball when the backend has one. */
  pluginPath: string;
  /** The section's NodeExecutable, undefined for the release (its runtime sits beside it). */
  nodeExecutable: string | undefined;
  /** Orthanc runs with no Node.js on its PATH (the release, whose runtime sits beside it). */
  hideNodeFromPath: boolean;
}

const UPLOAD_CLIENTS = 4;
/** The configuration Debian's orthanc package installs. */
const DEBIAN_CONFIGURATION = '/etc/orthanc/orthanc.json';

/** A stored instance: what was uploaded and what Orthanc answered. */
interface Stored {
  readonly source: CorpusFile;
  readonly upload: UploadResult;
}

/**
 * Register the end-to-end suite for `backend` (call at the top level of a `*.e2e.test.ts`).
 * Needs Debian's Orthanc (installed when missing, as root) and the backend's built artifact.
 */
export function describeEndToEnd(name: string, backend: E2EBackend, options: EndToEndOptions = {}): void {
  const clients = options.clients ?? UPLOAD_CLIENTS;
  const generated = options.generatedInstances ?? 300;
  const ctx = {} as SuiteContext;

  async function startOrthanc(
    label: string,
    store: BackendStore | undefined,
    extra: {
      encryption?: MasterKeyFile;
      /** StorageEncryption.WriteFormat; the plugin's default (C1) when absent. */
      writeFormat?: WriteFormat;
      configuration?: OrthancConfiguration;
      section?: Record<string, unknown>;
      baseConfiguration?: string;
    } = {},
  ): Promise<OrthancServer> {
    const section = extra.section ?? withWriteFormat(store?.section(extra.encryption), extra.writeFormat);
    const server = await OrthancServer.create({
      workDir: path.join(ctx.workDir, `orthanc-${label}`),
      plugins: [ctx.pluginPath],
      configuration: {
        ...(section && {
          [backend.sectionName]: {
            ...(ctx.nodeExecutable !== undefined && { NodeExecutable: ctx.nodeExecutable }),
            ...section,
          },
        }),
        ...extra.configuration,
      },
      ...(extra.baseConfiguration !== undefined && { baseConfiguration: extra.baseConfiguration }),
      // Built at start time: a backend's setUp may add variables (STORAGE_EMULATOR_HOST).
      ...(ctx.hideNodeFromPath && { env: { ...process.env, PATH: pathWithoutNode() } }),
    });
    ctx.servers.push(server);
    return server;
  }

  async function expectPluginLoaded(client: OrthancClient): Promise<void> {
    // Orthanc 1.10 runs on when a plugin path is wrong: only a listed plugin proves ours loaded.
    const plugins = await client.loadedPlugins();
    expect(plugins.length).toBeGreaterThan(0);
    if (backend.pluginId !== undefined) expect(plugins).toContain(backend.pluginId);
  }

  describe(`end to end: Orthanc + ${name}`, () => {
    beforeAll(async () => {
      if (!existsSync(backend.artifactPath)) {
        throw new Error(
          `plugin artifact ${backend.artifactPath} is missing: build its package first (pnpm build)`,
        );
      }
      ctx.workDir = mkdtempSync(path.join(os.tmpdir(), `oos-e2e-${name}-`));
      ctx.servers = [];
      if (backend.releaseTarball !== undefined) {
        const folder = unpackRelease(backend.releaseTarball, path.join(ctx.workDir, 'release'));
        ctx.pluginPath = path.join(folder, path.basename(backend.artifactPath));
        ctx.nodeExecutable = undefined;
        ctx.hideNodeFromPath = true;
      } else {
        ctx.pluginPath = backend.artifactPath;
        ctx.nodeExecutable = nodeExecutable();
        ctx.hideNodeFromPath = false;
      }
      await backend.setUp(path.join(ctx.workDir, 'backend'));
      // 2 studies x 2 series x 5 instances per patient; the large instance comes last.
      ctx.corpus = [
        ...(await sharedDicomCorpus()),
        ...(await generateCorpus(path.join(ctx.workDir, 'generated'), {
          patients: Math.ceil(generated / 20),
          studiesPerPatient: 2,
          seriesPerStudy: 2,
          instancesPerSeries: 5,
          largeInstanceBytes: options.largeInstanceBytes ?? 50 * 1024 * 1024,
          patientPrefix: `E2E-${name}`,
        })),
      ];
      ctx.keyText = randomBytes(32).toString('base64');
      ctx.key = { id: 1, path: path.join(ctx.workDir, 'master-key-1.b64') };
      writeFileSync(ctx.key.path, ctx.keyText + '\n', { mode: 0o600 });
    }, 300_000);

    afterAll(async () => {
      for (const server of ctx.servers ?? []) await server.stop();
      await backend.tearDown();
      if (ctx.workDir !== undefined) rmSync(ctx.workDir, { recursive: true, force: true });
    }, 120_000);

    describeOrthancConfigurationFiles();
    describeRoundTrip('encryption off', { encrypted: false, compressed: false });
    describeRoundTrip('C1 encryption on', { encrypted: true, compressed: false });
    describeRoundTrip("Orthanc's StorageCompression on", { encrypted: false, compressed: true });
    describeFormatSwitch();
    describeFaults();
  });

  function describeRoundTrip(title: string, mode: { encrypted: boolean; compressed: boolean }): void {
    describe(`round trip, ${title}`, () => {
      let store: BackendStore;
      let orthanc: OrthancServer;
      let stored: Stored[] = [];

      beforeAll(async () => {
        const label = mode.encrypted ? 'encrypted' : mode.compressed ? 'compressed' : 'plain';
        store = await backend.createStore(label);
        orthanc = await startOrthanc(`roundtrip-${label}`, store, {
          ...(mode.encrypted && { encryption: ctx.key }),
          configuration: { StorageCompression: mode.compressed },
        });
        await orthanc.start();
      }, 60_000);

      afterAll(async () => {
        await orthanc?.stop();
      }, 60_000);

      test('the plugin is loaded and every file uploads', async () => {
        await expectPluginLoaded(orthanc.client);
        const runtime = orthanc
          .readLog()
          .split('\n')
          .find((line) => line.includes('gateway runtime: Node.js v'));
        expect(runtime).toBeDefined();
        expect(runtime).toContain(
          ctx.nodeExecutable === undefined ? '(the runtime beside the plugin)' : '"NodeExecutable"',
        );
        stored = await mapConcurrent(ctx.corpus, clients, async (source) => ({
          source,
          upload: await orthanc.client.uploadFile(source.file),
        }));
        expect(stored.filter((s) => s.upload.Status !== 'Success').map((s) => s.source.label)).toEqual([]);
        expect((await orthanc.client.statistics()).CountInstances).toBe(ctx.corpus.length);
      }, 300_000);

      test("every instance's objects are in the backend, none in Orthanc's own storage", async () => {
        const objects = await store.listObjects();
        const uuids = (
          await mapConcurrent(stored, clients, (s) => attachmentUuids(orthanc.client, s.upload.ID))
        ).flat();
        const missing = uuids.filter((uuid) => !objects.some((name) => name.includes(uuid)));
        expect(missing).toEqual([]);
        expect(filesUnder(orthanc.storageDirectory)).toEqual([]);
      }, 120_000);

      if (!mode.compressed) {
        test('one object per instance: with range reads Orthanc stores no "DICOM until pixel data"', async () => {
          const objects = await store.listObjects();
          const instances = (await orthanc.client.statistics()).CountInstances;
          console.log(`${name}, ${title}: ${objects.length} objects for ${instances} instances`);
          expect(objects.length).toBe(instances);
          const log = orthanc.readLog();
          expect(log).toMatch(/storage area registered .*range reads on/);
        }, 60_000);
      }

      if (mode.encrypted) {
        test('every object starts with C1, is bound to its attachment, and has no plaintext DICM marker', async () => {
          const objects = await store.listObjects();
          expect(objects.length).toBeGreaterThanOrEqual(ctx.corpus.length);
          const bad = await mapConcurrent(objects, 8, async (name) => {
            const head = await store.readObjectHead(name, 132);
            const ok =
              head.subarray(0, 2).toString('latin1') === 'C1' &&
              name.includes(head.subarray(69, 105).toString('latin1')) &&
              head.subarray(128, 132).toString('latin1') !== 'DICM';
            return ok ? undefined : name;
          });
          expect(bad.filter((name) => name !== undefined)).toEqual([]);
          expect(orthanc.readLog()).not.toContain(ctx.keyText);
        }, 120_000);

        test('the CLI decrypts a raw object back to the original file', async () => {
          const original = stored.find((s) => !s.source.synthetic) ?? stored[0]!;
          const uuid = await orthanc.client.attachmentUuid(original.upload.ID);
          const objectName = (await store.listObjects()).find((name) => name.includes(uuid));
          expect(objectName).toBeDefined();
          const raw = path.join(ctx.workDir, `${uuid}.raw`);
          const plain = path.join(ctx.workDir, `${uuid}.dcm`);
          await store.downloadObject(objectName!, raw);
          expect(await sha256File(raw)).not.toBe(original.source.sha256);
          await execFileAsync(nodeExecutable(), [
            coreCliPath(),
            'decrypt',
            '--key',
            `${ctx.key.id}:${ctx.key.path}`,
            raw,
            plain,
          ]);
          expect(await sha256File(plain)).toBe(original.source.sha256);
        }, 60_000);
      } else if (!mode.compressed) {
        test('objects are the plain DICOM files', async () => {
          const sample = stored.filter((s) => s.source.size < 4 * 1024 * 1024).slice(0, 25);
          const objects = await store.listObjects();
          for (const s of sample) {
            const uuid = await orthanc.client.attachmentUuid(s.upload.ID);
            const raw = path.join(ctx.workDir, `${uuid}.raw`);
            await store.downloadObject(
              objects.find((name) => name.includes(uuid))!,
              raw,
            );
            expect(await sha256File(raw)).toBe(s.source.sha256);
            rmSync(raw);
          }
        }, 60_000);
      }

      test('after a restart every file reads back byte-exact, with tags and a preview', async () => {
        await orthanc.restart();
        const logBefore = orthanc.readLog().length;
        const mismatches = await mapConcurrent(stored, clients, async ({ source, upload }) => {
          const got = await orthanc.client.instanceFileSha256(upload.ID);
          return got.sha256 === source.sha256 && got.size === source.size
            ? undefined
            : `${source.label}: ${got.size} B`;
        });
        expect(mismatches.filter((m) => m !== undefined)).toEqual([]);
        await mapConcurrent(stored, clients, async ({ source, upload }) => {
          const tags = await orthanc.client.tags(upload.ID);
          expect(tags['0008,0018']?.Value).toEqual(expect.any(String));
          // The large one only renders slowly; its bytes were checked above.
          if (source.size > 16 * 1024 * 1024) return;
          const preview = await orthanc.client.preview(upload.ID).catch((error: unknown) => error);
          // Debian's Orthanc has no JPEG 2000 decoder and some shared files hold no image: it
          // answers 415 for those, as with its own storage. Ours are always decodable.
          if (!source.synthetic && preview instanceof OrthancHttpError && preview.status === 415) return;
          expect(preview instanceof Buffer && preview.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
        });
        // Reads that succeed leave nothing an operator would take for a problem in Orthanc's log.
        if (backend.pluginId !== undefined) {
          const ours = (text: string) =>
            text
              .split('\n')
              .filter((line) => /^[WE]\d{4} /.test(line) && line.includes(`${backend.pluginId}: `));
          // The startup summary is a warning line of ours: proof that the filter finds them.
          expect(ours(orthanc.readLog().slice(0, logBefore)).join('\n')).toContain('storage area registered');
          // The summary of the restart may land in the log after restart() returned: not a problem.
          const problems = ours(orthanc.readLog().slice(logBefore)).filter(
            (line) => !line.includes('storage area registered'),
          );
          expect(problems).toEqual([]);
        }
      }, 300_000);

      if (!mode.compressed) {
        test('/tags and /frames/0/raw are served by range reads, byte-exact', async () => {
          await orthanc.restart(); // Orthanc's storage cache would answer without the plugin
          const before = rangeReadsLogged(orthanc);
          const sample = stored
            .filter((s) => s.source.synthetic && s.source.size < 4 * 1024 * 1024)
            .slice(-12);
          for (const { source, upload } of sample) {
            const frame = await orthanc.client.getBytes(`/instances/${upload.ID}/frames/0/raw`);
            expect(frame.equals(await pixelDataOf(source.file, frame.length))).toBe(true);
            expect((await orthanc.client.tags(upload.ID))['0008,0018']?.Value).toEqual(expect.any(String));
          }
          expect(rangeReadsLogged(orthanc)).toBeGreaterThan(before);
        }, 120_000);
      }

      test('deleting a patient removes its objects from the backend and only those', async () => {
        const patient = stored.find((s) => s.source.synthetic)!.upload.ParentPatient;
        const instances = await orthanc.client.patientInstances(patient);
        expect(instances.length).toBeGreaterThan(1);
        const uuids = (
          await mapConcurrent(instances, clients, (i) => attachmentUuids(orthanc.client, i.ID))
        ).flat();
        const before = await store.listObjects();
        await orthanc.client.deletePatient(patient);
        const after = await store.listObjects();
        expect(after.filter((name) => uuids.some((uuid) => name.includes(uuid)))).toEqual([]);
        expect(after.length).toBe(before.length - uuids.length);
        expect((await orthanc.client.statistics()).CountInstances).toBe(ctx.corpus.length - instances.length);
      }, 60_000);

      if (mode.encrypted) {
        test('tampered C1 objects are refused through Orthanc, with no DICOM bytes and the object named in the log', async () => {
          const remaining = new Set(await orthanc.client.getJson<string[]>('/instances'));
          const targets = stored
            .filter((s) => s.source.synthetic && s.source.size < 1024 * 1024 && remaining.has(s.upload.ID))
            .slice(-4);
          expect(targets.length).toBe(4);
          const [flipped, truncated, copied, victim] = await Promise.all(
            targets.map(async (target) => {
              const uuid = await orthanc.client.attachmentUuid(target.upload.ID);
              const name = (await store.listObjects()).find((n) => n.includes(uuid))!;
              const file = path.join(ctx.workDir, `tamper-${uuid}`);
              await store.downloadObject(name, file);
              return { ...target, uuid, name, bytes: readFileSync(file) };
            }),
          );
          const flippedBytes = Buffer.from(flipped!.bytes);
          flippedBytes[200]! ^= 0x01; // inside the first chunk: whole and range reads both fail
          await store.writeObject(flipped!.name, flippedBytes);
          await store.writeObject(
            truncated!.name,
            truncated!.bytes.subarray(0, truncated!.bytes.length - 10),
          );
          await store.writeObject(victim!.name, copied!.bytes); // copied over another attachment's name
          await orthanc.restart(); // Orthanc's storage cache would serve the intact bytes

          const cases = [
            { target: flipped!, logged: 'fails C1 authentication', tagsFail: true },
            { target: truncated!, logged: 'truncated', tagsFail: false },
            { target: victim!, logged: `holds attachment ${copied!.uuid}`, tagsFail: true },
          ];
          for (const { target, logged, tagsFail } of cases) {
            const original = readFileSync(target.source.file);
            const uris = [
              `/instances/${target.upload.ID}/file`,
              ...(tagsFail
                ? [`/instances/${target.upload.ID}/tags`, `/instances/${target.upload.ID}/frames/0/raw`]
                : []),
            ];
            for (const uri of uris) {
              const answer = await orthanc.client.getRaw(uri);
              expect(answer.status).toBeGreaterThanOrEqual(400);
              expect(answer.body.includes(Buffer.from('DICM'))).toBe(false);
              expect(answer.body.includes(original.subarray(original.length - 64))).toBe(false);
            }
            await orthanc.waitForLogLine([target.uuid, logged]);
            const lines = orthanc
              .readLog()
              .split('\n')
              .filter((line) => line.includes(target.uuid));
            expect(lines).toEqual(expect.arrayContaining([expect.stringContaining(logged)]));
          }
          // The copy itself still reads as what it is, under its own name.
          expect((await orthanc.client.instanceFileSha256(copied!.upload.ID)).sha256).toBe(
            copied!.source.sha256,
          );
        }, 120_000);
      }
    });
  }

  function describeFormatSwitch(): void {
    describe('A1 objects written before switching to C1', () => {
      test('still read, whole, as /tags and as frames, beside the new C1 objects', async () => {
        const store = await backend.createStore('a1-to-c1');
        const sample = ctx.corpus.filter((c) => c.synthetic && c.size < 1024 * 1024).slice(0, 8);
        const before = await startOrthanc('a1-to-c1', store, { encryption: ctx.key, writeFormat: 'A1' });
        await before.start();
        const oldOnes = await mapConcurrent(sample.slice(0, 5), clients, async (source) => ({
          source,
          upload: await before.client.uploadFile(source.file),
        }));
        await before.stop();
        const heads = async () =>
          Promise.all(
            (await store.listObjects()).map(async (name) =>
              (await store.readObjectHead(name, 2)).toString('latin1'),
            ),
          );
        expect(await heads()).toEqual(oldOnes.map(() => 'A1'));

        // Same index and store, now writing C1 (the default).
        const after = await startOrthanc('a1-to-c1', store, { encryption: ctx.key });
        await after.start();
        const newOnes = await mapConcurrent(sample.slice(5), clients, async (source) => ({
          source,
          upload: await after.client.uploadFile(source.file),
        }));
        expect((await heads()).sort()).toEqual(
          [...oldOnes.map(() => 'A1'), ...newOnes.map(() => 'C1')].sort(),
        );
        for (const { source, upload } of [...oldOnes, ...newOnes]) {
          expect((await after.client.instanceFileSha256(upload.ID)).sha256).toBe(source.sha256);
          expect((await after.client.tags(upload.ID))['0008,0018']?.Value).toEqual(expect.any(String));
          const frame = await after.client.getBytes(`/instances/${upload.ID}/frames/0/raw`);
          expect(frame.equals(await pixelDataOf(source.file, frame.length))).toBe(true);
        }
        await after.stop();
      }, 180_000);
    });
  }

  /** Orthanc started from configuration files it ships or writes, with only our section added. */
  function describeOrthancConfigurationFiles(): void {
    describe("Orthanc's own configuration files, our section merged in", () => {
      const cases: [string, () => string][] = [
        ["a copy of Debian's /etc/orthanc/orthanc.json", () => readFileSync(DEBIAN_CONFIGURATION, 'utf8')],
        [
          'the file `Orthanc --config=FILE` writes',
          () => {
            const file = path.join(ctx.workDir, 'orthanc-written.json');
            execFileSync(ensureOrthancInstalled(), [`--config=${file}`]);
            return readFileSync(file, 'utf8');
          },
        ],
      ];
      test.each(cases)(
        '%s: stores in the backend and reads back',
        async (_title, baseConfiguration) => {
          const label = _title.startsWith('a copy') ? 'debian-config' : 'written-config';
          const store = await backend.createStore(label);
          const orthanc = await startOrthanc(label, store, { baseConfiguration: baseConfiguration() });
          await orthanc.start();
          try {
            await expectPluginLoaded(orthanc.client);
            const file = ctx.corpus.find((c) => c.synthetic)!;
            const upload = await orthanc.client.uploadFile(file.file);
            expect(upload.Status).toBe('Success');
            const uuid = await orthanc.client.attachmentUuid(upload.ID);
            expect((await store.listObjects()).some((name) => name.includes(uuid))).toBe(true);
            expect(filesUnder(orthanc.storageDirectory)).toEqual([]);
            expect((await orthanc.client.instanceFileSha256(upload.ID)).sha256).toBe(file.sha256);
          } finally {
            await orthanc.stop();
          }
        },
        90_000,
      );
    });
  }

  function describeFaults(): void {
    describe('faults', () => {
      test('a bad configuration value: Orthanc exits non-zero and its log names the key', async () => {
        const store = await backend.createStore('bad-config');
        const orthanc = await startOrthanc('bad-config', store, {
          section: { ...store.section(undefined), StorageStructure: 'diagonal' },
        });
        orthanc.spawn();
        const status = await orthanc.waitForExit(60_000);
        expect(status.code === 0 && status.signal === null).toBe(false);
        expect(orthanc.readLog()).toContain('StorageStructure');
      }, 90_000);

      test('section absent: Orthanc runs on its own storage and logs that the plugin is disabled', async () => {
        const store = await backend.createStore('absent');
        const orthanc = await startOrthanc('absent', undefined);
        await orthanc.start();
        try {
          // Loaded, and said so: Orthanc itself logs other things as "disabled".
          await expectPluginLoaded(orthanc.client);
          const disabled = orthanc
            .readLog()
            .split('\n')
            .filter((line) => line.includes(backend.sectionName) && /disabled/i.test(line));
          expect(disabled.length).toBeGreaterThan(0);
          const small = ctx.corpus.find((c) => c.synthetic)!;
          expect((await orthanc.client.uploadFile(small.file)).Status).toBe('Success');
          expect(filesUnder(orthanc.storageDirectory).length).toBe(1);
          expect(await store.listObjects()).toEqual([]);
        } finally {
          await orthanc.stop();
        }
      }, 90_000);

      describe('with the plugin running', () => {
        let store: BackendStore;
        let orthanc: OrthancServer;
        const files: string[] = [];

        beforeAll(async () => {
          store = await backend.createStore('faults');
          orthanc = await startOrthanc('faults', store);
          await orthanc.start();
          const dir = path.join(ctx.workDir, 'faults');
          mkdirSync(dir, { recursive: true });
          for (let i = 0; i < 4; i++) {
            const uid = newUid();
            const written = await writeSyntheticInstance(
              {
                patientId: `E2E-FAULTS-${i}`,
                patientName: 'E2E^Faults',
                studyInstanceUid: uid + '.1',
                seriesInstanceUid: uid + '.2',
                sopInstanceUid: uid + '.3',
                seriesNumber: 1,
                instanceNumber: 1,
                rows: 64,
                columns: 64,
                bitsAllocated: 16,
                seed: 1000 + i,
              },
              path.join(dir, `${i}.dcm`),
            );
            files.push(written.file);
          }
          expect((await orthanc.client.uploadFile(files[0]!)).Status).toBe('Success');
        }, 60_000);

        afterAll(async () => {
          await store?.resume();
          await orthanc?.stop();
        }, 60_000);

        test('backend stopped: uploads fail with HTTP 500 and the instance count does not change', async () => {
          await store.interrupt();
          const before = (await orthanc.client.statistics()).CountInstances;
          const failure = await orthanc.client.uploadFile(files[1]!).then(
            () => undefined,
            (error: unknown) => error,
          );
          expect(failure).toBeInstanceOf(OrthancHttpError);
          expect((failure as OrthancHttpError).status).toBe(500);
          expect((await orthanc.client.statistics()).CountInstances).toBe(before);
        }, 120_000);

        test('backend back: uploads work without restarting Orthanc', async () => {
          const pid = orthanc.pid;
          await store.resume();
          const result = await retryFor(30_000, () => orthanc.client.uploadFile(files[1]!));
          expect(result.Status).toBe('Success');
          expect(orthanc.pid).toBe(pid);
          expect((await orthanc.client.statistics()).CountInstances).toBe(2);
        }, 60_000);

        test('gateway killed with -9: the next calls succeed after the automatic restart', async () => {
          const gateways = findGatewayPids(orthanc.pid!);
          expect(gateways.length).toBe(1);
          process.kill(gateways[0]!, 'SIGKILL');
          const result = await retryFor(30_000, () => orthanc.client.uploadFile(files[2]!), 500);
          expect(result.Status).toBe('Success');
          const restarted = findGatewayPids(orthanc.pid!);
          expect(restarted.length).toBe(1);
          expect(restarted[0]).not.toBe(gateways[0]);
          const first = await orthanc.client.instanceFileSha256(result.ID);
          expect(first.sha256).toBe(await sha256File(files[2]!));
        }, 60_000);

        test('Orthanc killed with -9: no gateway process is left', async () => {
          const gateways = findGatewayPids(orthanc.pid!);
          expect(gateways.length).toBe(1);
          await orthanc.kill9();
          const deadline = Date.now() + 10_000;
          while (gateways.some(processExists) && Date.now() < deadline) await sleep(100);
          expect(gateways.filter(processExists)).toEqual([]);
        }, 30_000);
      });
    });
  }
}

/** Uuids of every attachment of an instance (the DICOM file and any Orthanc adds). */
async function attachmentUuids(client: OrthancClient, instanceId: string): Promise<string[]> {
  const names = await client.getJson<string[]>(`/instances/${instanceId}/attachments`);
  return Promise.all(names.map((attachment) => client.attachmentUuid(instanceId, attachment)));
}

/** Files under a folder (Orthanc's own StorageDirectory), recursively; none when absent. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name));
}

/** Adds `StorageEncryption.WriteFormat` to a section that has encryption. */
function withWriteFormat(
  section: Record<string, unknown> | undefined,
  writeFormat: WriteFormat | undefined,
): Record<string, unknown> | undefined {
  if (section === undefined || writeFormat === undefined) return section;
  const encryption = section.StorageEncryption as Record<string, unknown> | undefined;
  if (encryption === undefined) throw new Error('a WriteFormat needs StorageEncryption in the section');
  return { ...section, StorageEncryption: { ...encryption, WriteFormat: writeFormat } };
}

/** The last `length` pixel bytes of an uncompressed synthetic instance (its Pixel Data is last, padded to even). */
async function pixelDataOf(file: string, length: number): Promise<Buffer> {
  const bytes = await readFile(file);
  const end = bytes.length - (length % 2);
  return bytes.subarray(end - length, end);
}

/** How many range reads the gateway has logged so far (it logs each at info level). */
function rangeReadsLogged(orthanc: OrthancServer): number {
  return orthanc
    .readLog()
    .split('\n')
    .filter((line) => line.includes('read range [')).length;
}
