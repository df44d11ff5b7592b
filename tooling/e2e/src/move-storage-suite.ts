// End-to-end checks of hybrid mode's moves with a real Orthanc: POST /move-storage, the
// MoveStorage job and GET /object-storage/locations/{level}/{id}, against one backend.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  type BackendStore,
  type E2EBackend,
  writeMasterKey,
  type MasterKeyFile,
} from './backends/backend.js';
import { generateCorpus, sharedOrGeneratedCorpus, type CorpusFile } from './harness/dicom/corpus.js';
import { OrthancServer } from './harness/orthanc.js';
import { mapConcurrent, sleep } from './harness/parallel.js';
import { nodeExecutable } from './harness/repo.js';
import type { OrthancClient, UploadResult } from './harness/rest.js';

export interface MoveStorageOptions {
  /** Also run the asynchronous job that Orthanc's crash interrupts (instances in its study). */
  readonly crashTestInstances?: number;
}

interface Copy {
  Storage: 'file-system' | 'object-storage';
  Path?: string;
  ObjectName?: string;
  StoredSize: number;
  Encryption: { Format: string; MasterKeyId: number } | null;
}

export interface LocatedAttachment {
  Resource: string;
  Attachment: string;
  ContentType: number;
  Uuid: string;
  Size: number;
  Storage: 'file-system' | 'object-storage' | 'both' | 'missing';
  Copies: Copy[];
}

export interface Locations {
  Resource: string;
  Summary: Record<string, number>;
  Attachments: LocatedAttachment[];
}

interface JobStatus {
  ID: string;
  Type: string;
  State: string;
  Progress: number;
  Content: Record<string, unknown>;
}

/** What encryption adds: C1 (the default format) has a 105-byte header and a 16-byte tag per 64 KiB chunk. */
function storedSize(size: number, encrypted: boolean): number {
  return encrypted ? 105 + size + 16 * Math.max(1, Math.ceil(size / 65_536)) : size;
}

export function locations(client: OrthancClient, level: string, id: string): Promise<Locations> {
  return client.getJson(`/object-storage/locations/${level}/${id}`);
}

/** Every attachment of the resource on one side only, with the path/object name and size it must have. */
export function expectAllOn(
  located: Locations,
  side: 'file-system' | 'object-storage',
  encryption: MasterKeyFile | undefined,
  storageDirectory: string,
): void {
  expect(located.Attachments.filter((a) => a.Storage !== side).map((a) => `${a.Uuid} ${a.Storage}`)).toEqual(
    [],
  );
  for (const attachment of located.Attachments) {
    const copy = attachment.Copies[0]!;
    if (side === 'file-system') {
      const u = attachment.Uuid;
      expect(copy.Path).toBe(path.join(storageDirectory, u.slice(0, 2), u.slice(2, 4), u));
    } else {
      expect(copy.ObjectName ?? copy.Path).toContain(attachment.Uuid);
    }
    expect(copy.StoredSize).toBe(storedSize(attachment.Size, encryption !== undefined));
    expect(copy.Encryption).toEqual(encryption ? { Format: 'C1', MasterKeyId: encryption.id } : null);
  }
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Waits for a job to end; answers its last status. */
async function awaitJob(client: OrthancClient, id: string, timeoutMs = 120_000): Promise<JobStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await client.getJson<JobStatus>(`/jobs/${id}`);
    if (['Success', 'Failure', 'Paused'].includes(status.State)) return status;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${status.State} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

export function describeMoveStorage(
  name: string,
  backend: E2EBackend,
  options: MoveStorageOptions = {},
): void {
  const ctx = {} as { workDir: string; shared: CorpusFile[]; key: MasterKeyFile; servers: OrthancServer[] };

  async function startHybrid(
    label: string,
    store: BackendStore,
    encryption?: MasterKeyFile,
    hybridMode = 'WriteToFileSystem',
  ): Promise<OrthancServer> {
    const server = await OrthancServer.create({
      workDir: path.join(ctx.workDir, `orthanc-${label}`),
      plugins: [backend.artifactPath],
      configuration: {
        [backend.sectionName]: {
          NodeExecutable: nodeExecutable(),
          ...store.section(encryption),
          HybridMode: hybridMode,
        },
      },
    });
    ctx.servers.push(server);
    await server.start();
    return server;
  }

  describe(`hybrid mode moves: Orthanc + ${name}`, () => {
    beforeAll(async () => {
      if (!existsSync(backend.artifactPath)) {
        throw new Error(
          `plugin artifact ${backend.artifactPath} is missing: build its package first (pnpm build)`,
        );
      }
      ctx.workDir = mkdtempSync(path.join(os.tmpdir(), `oos-e2e-move-${name}-`));
      ctx.servers = [];
      await backend.setUp(path.join(ctx.workDir, 'backend'));
      ctx.shared = await sharedOrGeneratedCorpus(path.join(ctx.workDir, 'corpus'), `MOVE-${name}`);
      ctx.key = writeMasterKey(ctx.workDir, 7);
    }, 300_000);

    afterAll(async () => {
      for (const server of ctx.servers ?? []) await server.stop();
      await backend.tearDown();
      if (ctx.workDir !== undefined) rmSync(ctx.workDir, { recursive: true, force: true });
    }, 120_000);

    describeStudyRoundTrip('encryption off', false);
    describeStudyRoundTrip('C1 encryption on', true);
    describeWriteToObjectStorage();
    if (options.crashTestInstances) describeCrash(options.crashTestInstances);
  });

  function describeStudyRoundTrip(title: string, encrypted: boolean): void {
    describe(`a study to object storage and back, ${title}`, () => {
      let store: BackendStore;
      let orthanc: OrthancServer;
      let uploads: { source: CorpusFile; upload: UploadResult }[];
      let study: string;
      let studyInstances: { source: CorpusFile; upload: UploadResult }[];
      const studyAttachment = randomBytes(50_000);
      const encryption = () => (encrypted ? ctx.key : undefined);

      beforeAll(async () => {
        store = await backend.createStore(encrypted ? 'move-encrypted' : 'move-plain');
        orthanc = await startHybrid(encrypted ? 'move-encrypted' : 'move-plain', store, encryption());
      }, 60_000);

      afterAll(async () => {
        await orthanc?.stop();
      }, 60_000);

      test('WriteToFileSystem keeps the shared files on disk; the locations route says so', async () => {
        uploads = await mapConcurrent(ctx.shared, 4, async (source) => ({
          source,
          upload: await orthanc.client.uploadFile(source.file),
        }));
        expect(uploads.filter((u) => u.upload.Status !== 'Success')).toEqual([]);
        // The study with the most instances moves; the others stay as they are.
        const counts = new Map<string, number>();
        for (const u of uploads)
          counts.set(u.upload.ParentStudy, (counts.get(u.upload.ParentStudy) ?? 0) + 1);
        study = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]![0];
        studyInstances = uploads.filter((u) => u.upload.ParentStudy === study);
        await orthanc.client.putBytes(`/studies/${study}/attachments/1025`, studyAttachment);

        expect(await store.listObjects()).toEqual([]);
        const before = await locations(orthanc.client, 'studies', study);
        expect(before.Resource).toBe(`/studies/${study}`);
        expect(before.Attachments.length).toBeGreaterThanOrEqual(studyInstances.length + 1);
        expect(before.Attachments.filter((a) => a.Resource === `/studies/${study}`)).toMatchObject([
          { Attachment: '1025', ContentType: 1025, Size: studyAttachment.length },
        ]);
        expectAllOn(before, 'file-system', encryption(), orthanc.storageDirectory);
      }, 120_000);

      test('POST /move-storage moves the study, study attachment included, to the object storage', async () => {
        const before = await locations(orthanc.client, 'studies', study);
        const answer = await orthanc.client.postJson<Record<string, unknown>>('/move-storage', {
          Resources: [study],
          TargetStorage: 'object-storage',
        });
        expect(answer).toMatchObject({
          Studies: [study],
          TargetStorage: 'object-storage',
          AttachmentsMoved: before.Attachments.length,
          AttachmentsFailed: 0,
        });
        const after = await locations(orthanc.client, 'studies', study);
        expectAllOn(after, 'object-storage', encryption(), orthanc.storageDirectory);
        const objects = await store.listObjects();
        for (const attachment of after.Attachments) {
          expect(objects.some((object) => object.includes(attachment.Uuid))).toBe(true);
          const u = attachment.Uuid;
          expect(existsSync(path.join(orthanc.storageDirectory, u.slice(0, 2), u.slice(2, 4), u))).toBe(
            false,
          );
        }
        // Nothing else moved.
        expect(objects.length).toBe(after.Attachments.length);
        const other = uploads.find((u) => u.upload.ParentStudy !== study)!;
        expectAllOn(
          await locations(orthanc.client, 'instances', other.upload.ID),
          'file-system',
          encryption(),
          orthanc.storageDirectory,
        );
        if (encrypted) {
          const head = await store.readObjectHead(objects[0]!, 6);
          expect(head.subarray(0, 2).toString('latin1')).toBe('C1');
          expect(head.readUInt32LE(2)).toBe(ctx.key.id);
        }
      }, 120_000);

      test('after a restart (no cache), every instance and the study attachment read back byte-exact', async () => {
        await orthanc.restart();
        await mapConcurrent(uploads, 4, async (u) => {
          expect(await orthanc.client.instanceFileSha256(u.upload.ID)).toEqual({
            sha256: u.source.sha256,
            size: u.source.size,
          });
        });
        const attachment = await orthanc.client.getBytes(`/studies/${study}/attachments/1025/data`);
        expect(sha256(attachment)).toBe(sha256(studyAttachment));
        // Reads served by the second storage are not errors: no warning or error about them.
        expect(orthanc.readLog()).not.toMatch(/^[WE]\d{4} .*(object not found|trying)/m);
      }, 120_000);

      test('moving it back (asynchronous job, visible in /jobs) empties the object storage', async () => {
        const job = await orthanc.client.postJson<{ ID: string; Path: string }>('/move-storage', {
          Resources: [study],
          TargetStorage: 'file-system',
          Asynchronous: true,
          Priority: 3,
        });
        expect(job.Path).toBe(`/jobs/${job.ID}`);
        const status = await awaitJob(orthanc.client, job.ID);
        expect(status).toMatchObject({ Type: 'MoveStorage', State: 'Success', Progress: 100 });
        expect(status.Content).toMatchObject({ TargetStorage: 'file-system', AttachmentsFailed: 0 });
        expect(await store.listObjects()).toEqual([]);
        expectAllOn(
          await locations(orthanc.client, 'studies', study),
          'file-system',
          encryption(),
          orthanc.storageDirectory,
        );
        await orthanc.restart();
        for (const u of studyInstances) {
          expect((await orthanc.client.instanceFileSha256(u.upload.ID)).sha256).toBe(u.source.sha256);
        }
        const attachment = await orthanc.client.getBytes(`/studies/${study}/attachments/1025/data`);
        expect(sha256(attachment)).toBe(sha256(studyAttachment));
      }, 120_000);
    });
  }

  function describeWriteToObjectStorage(): void {
    test('WriteToObjectStorage: an instance moves to the file system and back', async () => {
      const store = await backend.createStore('move-wtos');
      const orthanc = await startHybrid('move-wtos', store, undefined, 'WriteToObjectStorage');
      try {
        const source = ctx.shared[0]!;
        const { ID: instance } = await orthanc.client.uploadFile(source.file);
        expectAllOn(await locations(orthanc.client, 'instances', instance), 'object-storage', undefined, '');
        const there = await orthanc.client.postJson<Record<string, number>>('/move-storage', {
          Resources: [instance],
          TargetStorage: 'file-system',
        });
        expect(there).toMatchObject({ AttachmentsMoved: 1, AttachmentsFailed: 0 });
        expectAllOn(
          await locations(orthanc.client, 'instances', instance),
          'file-system',
          undefined,
          orthanc.storageDirectory,
        );
        expect(await store.listObjects()).toEqual([]);
        await orthanc.restart();
        expect((await orthanc.client.instanceFileSha256(instance)).sha256).toBe(source.sha256);
        await orthanc.client.postJson('/move-storage', {
          Resources: [instance],
          TargetStorage: 'object-storage',
        });
        expectAllOn(await locations(orthanc.client, 'instances', instance), 'object-storage', undefined, '');
        expect((await orthanc.client.instanceFileSha256(instance)).sha256).toBe(source.sha256);
      } finally {
        await orthanc.stop();
      }
    }, 120_000);
  }

  function describeCrash(instances: number): void {
    describe('an asynchronous job interrupted by a crash of Orthanc', () => {
      let store: BackendStore;
      let orthanc: OrthancServer;
      let corpus: CorpusFile[];
      let uploads: UploadResult[];

      beforeAll(async () => {
        store = await backend.createStore('move-crash');
        orthanc = await startHybrid('move-crash', store, ctx.key);
        corpus = await generateCorpus(path.join(ctx.workDir, 'crash-corpus'), {
          patients: 1,
          studiesPerPatient: 1,
          seriesPerStudy: 4,
          instancesPerSeries: Math.ceil(instances / 4),
          largeInstanceBytes: 0,
          patientPrefix: `E2E-MOVE-${name}`,
        });
        uploads = await mapConcurrent(corpus, 4, (file) => orthanc.client.uploadFile(file.file));
      }, 300_000);

      afterAll(async () => {
        await orthanc?.stop();
      }, 60_000);

      test('progress shows in /jobs; pause, resume, kill -9 mid-job, restart, cancel, resubmit: all moved, nothing lost', async () => {
        const patient = uploads[0]!.ParentPatient;
        const job = await orthanc.client.postJson<{ ID: string }>('/move-storage', {
          Resources: [patient],
          TargetStorage: 'object-storage',
          Asynchronous: true,
        });
        const running = async (): Promise<JobStatus> => {
          for (;;) {
            const status = await orthanc.client.getJson<JobStatus>(`/jobs/${job.ID}`);
            if (status.State === 'Running' && status.Progress > 0) return status;
            if (status.State === 'Success' || status.State === 'Failure') {
              throw new Error(`the job ended (${status.State}) before it could be interrupted`);
            }
            await sleep(10);
          }
        };
        const seen = await running();
        expect(seen.Progress).toBeLessThan(100);
        expect(seen.Content).toMatchObject({ TargetStorage: 'object-storage', Patients: [patient] });

        // Paused, it stays where it is; resumed, it goes on.
        await orthanc.client.postJson(`/jobs/${job.ID}/pause`, {});
        const paused = await awaitJob(orthanc.client, job.ID);
        expect(paused.State).toBe('Paused');
        await sleep(500);
        expect((await orthanc.client.getJson<JobStatus>(`/jobs/${job.ID}`)).Progress).toBe(paused.Progress);
        await orthanc.client.postJson(`/jobs/${job.ID}/resume`, {});
        expect((await running()).Progress).toBeLessThan(100);
        await orthanc.kill9();

        // Orthanc reloads the job it saved at submission and runs it again; cancel it there, then
        // resubmit it, as an operator would.
        await orthanc.start();
        let status = await orthanc.client.getJson<JobStatus>(`/jobs/${job.ID}`);
        expect(status.Type).toBe('MoveStorage');
        if (status.State !== 'Failure') {
          await orthanc.client.postJson(`/jobs/${job.ID}/cancel`, {});
          status = await awaitJob(orthanc.client, job.ID);
        }
        expect(status.State).toBe('Failure');
        const interrupted = await locations(orthanc.client, 'patients', patient);
        expect(interrupted.Summary.missing).toBe(0);
        expect(interrupted.Summary['object-storage']).toBeGreaterThan(0);
        expect(interrupted.Summary['file-system']).toBeGreaterThan(0);

        await orthanc.client.postJson(`/jobs/${job.ID}/resubmit`, {});
        status = await awaitJob(orthanc.client, job.ID);
        expect(status.State).toBe('Success');
        const content = status.Content as {
          AttachmentsFailed: number;
          AttachmentsMoved: number;
          AttachmentsAlreadyOnTarget: number;
        };
        expect(content.AttachmentsFailed).toBe(0);
        // The rerun found what moved before the interruptions already there.
        expect(content.AttachmentsAlreadyOnTarget).toBeGreaterThan(0);

        const after = await locations(orthanc.client, 'patients', patient);
        expectAllOn(after, 'object-storage', ctx.key, orthanc.storageDirectory);
        expect(after.Attachments.length).toBeGreaterThanOrEqual(corpus.length);
        expect(content.AttachmentsMoved + content.AttachmentsAlreadyOnTarget).toBe(after.Attachments.length);
        await orthanc.restart();
        await mapConcurrent(corpus, 4, async (file, index) => {
          expect((await orthanc.client.instanceFileSha256(uploads[index]!.ID)).sha256).toBe(file.sha256);
        });
      }, 300_000);
    });
  }
}
