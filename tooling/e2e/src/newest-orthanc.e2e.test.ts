// The newest Debian Orthanc (sid, 1.13.0 today) in a debootstrap chroot (harness/chroot.ts), with
// each provider's release tarball and no Node.js anywhere in the chroot. The backends' servers
// run on the host's loopback, which the chroot shares. Per provider: store, read back after a
// restart, range reads, delete, client-side encryption (C1, the default format), backend down
// then back.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { awsBackend } from './backends/aws.js';
import { azureBackend } from './backends/azure.js';
import {
  type BackendStore,
  type E2EBackend,
  writeMasterKey,
  type MasterKeyFile,
} from './backends/backend.js';
import { googleBackend } from './backends/google.js';
import { chrootCommand, ensureNewestOrthancChroot, type NewestOrthancChroot } from './harness/chroot.js';
import { generateCorpus, sharedDicomCorpus, type CorpusFile } from './harness/dicom/corpus.js';
import { ORTHANC_EXECUTABLE } from './harness/install.js';
import { OrthancServer } from './harness/orthanc.js';
import { mapConcurrent, retryFor } from './harness/parallel.js';
import { unpackRelease } from './harness/release.js';
import { OrthancHttpError, type UploadResult } from './harness/rest.js';

/** Orthanc's PATH inside the chroot: Debian's defaults, where nothing provides `node`. */
const CHROOT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

let chroot: NewestOrthancChroot;

beforeAll(() => {
  chroot = ensureNewestOrthancChroot();
}, 900_000);

test('the chroot holds Debian sid Orthanc 1.13 or later and no Node.js', () => {
  const [major, minor] = chroot.packageVersion.split('.').map(Number);
  expect(major! * 100 + minor!).toBeGreaterThanOrEqual(113);
  for (const dir of CHROOT_PATH.split(':'))
    expect(existsSync(path.join(chroot.root, dir, 'node'))).toBe(false);
});

describeNewestOrthanc(awsBackend());
describeNewestOrthanc(azureBackend());
describeNewestOrthanc(googleBackend());

function describeNewestOrthanc(backend: E2EBackend): void {
  describe(`newest Debian Orthanc (chroot) + ${backend.name} release`, () => {
    let workDir: string;
    let pluginPath: string;
    let corpus: CorpusFile[];
    /** Uploaded only while the backend is down, then once it is back. */
    let spare: CorpusFile;
    let key: MasterKeyFile;
    const servers: OrthancServer[] = [];

    async function startOrthanc(
      label: string,
      store: BackendStore,
      baseConfiguration: string,
      encryption?: MasterKeyFile,
    ): Promise<OrthancServer> {
      const server = await OrthancServer.create({
        workDir: path.join(workDir, `orthanc-${label}`),
        plugins: [pluginPath],
        configuration: { [backend.sectionName]: store.section(encryption) },
        baseConfiguration,
        chroot: { root: chroot.root, shared: [workDir] },
        env: { ...process.env, PATH: CHROOT_PATH },
      });
      servers.push(server);
      await server.start(60_000);
      return server;
    }

    async function uploadAll(
      orthanc: OrthancServer,
    ): Promise<{ source: CorpusFile; upload: UploadResult }[]> {
      const stored = await mapConcurrent(corpus, 4, async (source) => ({
        source,
        upload: await orthanc.client.uploadFile(source.file),
      }));
      expect(stored.filter((s) => s.upload.Status !== 'Success').map((s) => s.source.label)).toEqual([]);
      return stored;
    }

    async function expectReadBack(
      orthanc: OrthancServer,
      stored: { source: CorpusFile; upload: UploadResult }[],
    ): Promise<void> {
      const bad = await mapConcurrent(stored, 4, async ({ source, upload }) => {
        const got = await orthanc.client.instanceFileSha256(upload.ID);
        return got.sha256 === source.sha256 ? undefined : source.label;
      });
      expect(bad.filter((label) => label !== undefined)).toEqual([]);
    }

    beforeAll(async () => {
      workDir = mkdtempSync(path.join(os.tmpdir(), `oos-e2e-newest-${backend.name}-`));
      pluginPath = path.join(
        unpackRelease(backend.releaseTarball!, path.join(workDir, 'release')),
        path.basename(backend.artifactPath),
      );
      await backend.setUp(path.join(workDir, 'backend'));
      corpus = [
        ...(await sharedDicomCorpus()),
        ...(await generateCorpus(path.join(workDir, 'generated'), {
          patients: 2,
          studiesPerPatient: 1,
          seriesPerStudy: 1,
          instancesPerSeries: 4,
          // Above every provider's single-request limit (5 MB S3, 4 MiB Azure, 8 MiB GCS).
          largeInstanceBytes: 9 * 1024 * 1024,
          patientPrefix: `NEWEST-${backend.name}`,
        })),
      ];
      spare = corpus.find((c) => c.synthetic)!;
      corpus = corpus.filter((c) => c !== spare);
      key = writeMasterKey(workDir, 1);
    }, 300_000);

    afterAll(async () => {
      for (const server of servers) await server.stop();
      await backend.tearDown();
      if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true });
    }, 120_000);

    test("Debian's own configuration: store, restart, read back, range reads, delete", async () => {
      const store = await backend.createStore('newest-plain');
      const debianConfiguration = readFileSync(path.join(chroot.root, 'etc/orthanc/orthanc.json'), 'utf8');
      const orthanc = await startOrthanc('plain', store, debianConfiguration);
      expect((await orthanc.client.system()).Version).toBe(chroot.packageVersion.split('+')[0]);
      const plugins = await orthanc.client.loadedPlugins();
      expect(plugins.length).toBeGreaterThan(0);
      if (backend.pluginId !== undefined) expect(plugins).toContain(backend.pluginId);
      expect(orthanc.readLog()).toMatch(
        /gateway runtime: Node\.js v24\.[^\n]*\(the runtime beside the plugin\)/,
      );
      const stored = await uploadAll(orthanc);
      const objects = await store.listObjects();
      expect(objects.length).toBeGreaterThanOrEqual(corpus.length);

      await orthanc.restart();
      // Headers first, before whole reads fill Orthanc's cache: they come through range reads.
      const before = orthanc.readLog().length;
      for (const { upload } of stored.filter((s) => s.source.synthetic).slice(0, 3)) {
        await orthanc.client.tags(upload.ID);
      }
      expect(orthanc.readLog().slice(before)).toMatch(/read range \[\d+, \+\d+\) of/);
      await expectReadBack(orthanc, stored);

      const patient = stored.find((s) => s.source.synthetic)!.upload.ParentPatient;
      const instances = await orthanc.client.patientInstances(patient);
      await orthanc.client.deletePatient(patient);
      const after = await store.listObjects();
      expect(after.length).toBeLessThanOrEqual(objects.length - instances.length);
      expect((await orthanc.client.statistics()).CountInstances).toBe(corpus.length - instances.length);
    }, 300_000);

    test('the file `Orthanc --config` writes, C1 encryption, backend down then back', async () => {
      const store = await backend.createStore('newest-a1');
      const written = path.join(workDir, 'orthanc-written.json');
      const { command, args } = chrootCommand(chroot.root, [workDir], ORTHANC_EXECUTABLE, [
        `--config=${written}`,
      ]);
      execFileSync(command, args);
      const orthanc = await startOrthanc('encrypted', store, readFileSync(written, 'utf8'), key);
      const stored = await uploadAll(orthanc);
      const objects = await store.listObjects();
      const heads = await mapConcurrent(objects, 8, (name) => store.readObjectHead(name, 2));
      expect(heads.filter((head) => head.toString('latin1') !== 'C1')).toEqual([]);

      await orthanc.restart();
      await expectReadBack(orthanc, stored);

      await store.interrupt();
      try {
        const failure = await orthanc.client.uploadFile(spare.file).then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(failure).toBeInstanceOf(OrthancHttpError);
        expect((failure as OrthancHttpError).status).toBe(500);
        expect((await orthanc.client.statistics()).CountInstances).toBe(corpus.length);
      } finally {
        await store.resume();
      }
      const upload = await retryFor(30_000, () => orthanc.client.uploadFile(spare.file));
      expect(upload.Status).toBe('Success');
      await expectReadBack(orthanc, [...stored.slice(0, 3), { source: spare, upload }]);
    }, 300_000);
  });
}
