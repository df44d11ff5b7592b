// Stateless Orthanc: two Orthancs share one PostgreSQL index (Debian's orthanc-postgresql) and one
// bucket (our plugin). Whatever one stores, the other serves; the index and the bucket agree.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startPostgres, type StartedPostgres } from '@orthanc-object-storage/servers';
import {
  type BackendStore,
  type E2EBackend,
  writeMasterKey,
  type MasterKeyFile,
} from './backends/backend.js';
import { generateCorpus, type CorpusFile } from './harness/dicom/corpus.js';
import { OrthancServer } from './harness/orthanc.js';
import { mapConcurrent } from './harness/parallel.js';
import { nodeExecutable } from './harness/repo.js';
import { OrthancHttpError, type OrthancClient, type UploadResult } from './harness/rest.js';

export const POSTGRESQL_INDEX_PLUGIN = '/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so';

export interface ScaleOutOptions {
  /** Instances ingested across both nodes (the issue asks for at least 500 on AWS). */
  readonly instances: number;
  readonly encrypted: boolean;
  /** REST clients per node during the ingest. */
  readonly clientsPerNode?: number;
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

/** The attachment uuid an object name holds (flat or legacy layout, any extension). */
export function uuidOfObject(name: string): string | undefined {
  return UUID.exec(name)?.[0];
}

/**
 * Configuration of one node of the pair. Shared by both: the PostgreSQL section (same database,
 * "Lock": false so that several Orthancs may open it) and the plugin section (same bucket, same
 * keys). Per node: Name, HTTP port, work folders.
 */
export function scaleOutNodeConfiguration(
  pg: StartedPostgres,
  sectionName: string,
  section: Record<string, unknown>,
  nodeName: string,
): Record<string, unknown> {
  return {
    Name: nodeName,
    PostgreSQL: {
      EnableIndex: true,
      EnableStorage: false,
      Host: pg.host,
      Port: pg.port,
      Database: pg.database,
      Username: pg.user,
      Password: pg.password,
      Lock: false,
      IndexConnectionsCount: 4,
      MaximumConnectionRetries: 10,
      ConnectionRetryInterval: 1,
    },
    [sectionName]: { NodeExecutable: nodeExecutable(), ...section },
  };
}

/**
 * Upload, retrying while Orthanc answers 503: with several writers on one PostgreSQL index,
 * Orthanc 1.10 reports a transaction that could not be serialized that way, and its clients
 * retry (the instance was not stored: the retry stores it). Counts the retries in `retries`.
 */
async function uploadRetrying503(
  client: OrthancClient,
  file: string,
  retries: { count: number },
): Promise<UploadResult> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await client.uploadFile(file);
    } catch (error) {
      if (!(error instanceof OrthancHttpError && error.status === 503) || attempt >= 20) throw error;
      retries.count += 1;
      await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 200));
    }
  }
}

/** Register the scale-out tests for `backend` (top level of a `*.e2e.test.ts`). */
export function describeScaleOut(name: string, backend: E2EBackend, options: ScaleOutOptions): void {
  const clients = options.clientsPerNode ?? 4;

  describe(`scale-out: two Orthancs, one PostgreSQL index, one ${name} store${options.encrypted ? ', encrypted' : ''}`, () => {
    let workDir: string;
    let pg: StartedPostgres;
    let store: BackendStore;
    let nodes: OrthancServer[] = [];
    let corpus: CorpusFile[] = [];
    let uploads: { source: CorpusFile; upload: UploadResult; node: number }[] = [];

    /** Every attachment uuid of the shared index. */
    const indexedUuids = async () => (await pg.query('select uuid from attachedfiles')).sort();
    /** Every attachment uuid the bucket holds an object for. */
    const storedUuids = async () =>
      (await store.listObjects())
        .map((object) => uuidOfObject(object) ?? `unexpected object ${object}`)
        .sort();

    beforeAll(async () => {
      workDir = mkdtempSync(path.join(os.tmpdir(), `oos-scale-out-${name}-`));
      pg = await startPostgres();
      await backend.setUp(path.join(workDir, 'backend'));
      store = await backend.createStore('scale-out');
      let key: MasterKeyFile | undefined;
      if (options.encrypted) {
        key = writeMasterKey(workDir, 1);
      }
      const section = store.section(key);
      for (const node of ['a', 'b']) {
        nodes.push(
          await OrthancServer.create({
            workDir: path.join(workDir, `orthanc-${node}`),
            plugins: [POSTGRESQL_INDEX_PLUGIN, backend.artifactPath],
            configuration: scaleOutNodeConfiguration(pg, backend.sectionName, section, `scale-out-${node}`),
            verbose: false,
          }),
        );
      }
      // One after the other: the first creates the schema.
      for (const node of nodes) await node.start(60_000);
      const perPatient = 2 * 2 * 5;
      corpus = await generateCorpus(path.join(workDir, 'dicom'), {
        patients: Math.ceil(options.instances / perPatient),
        studiesPerPatient: 2,
        seriesPerStudy: 2,
        instancesPerSeries: 5,
        largeInstanceBytes: 0,
        patientPrefix: `SCALE-${name}-${Date.now()}`,
      });
    }, 300_000);

    afterAll(async () => {
      for (const node of nodes) await node.stop();
      await backend.tearDown();
      await pg?.stop();
      if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true });
      nodes = [];
    }, 180_000);

    test(`${options.instances}+ instances ingested concurrently, split across both nodes`, async () => {
      for (const node of nodes) {
        const plugins = await node.client.loadedPlugins();
        expect(plugins).toContain('postgresql-index');
        if (backend.pluginId !== undefined) expect(plugins).toContain(backend.pluginId);
      }
      // Even files to node a, odd to node b, both at once.
      const started = Date.now();
      const retries = { count: 0 };
      uploads = await mapConcurrent(corpus, 2 * clients, async (source, index) => ({
        source,
        node: index % 2,
        upload: await uploadRetrying503(nodes[index % 2]!.client, source.file, retries),
      }));
      expect(uploads.filter((u) => u.upload.Status !== 'Success').map((u) => u.source.label)).toEqual([]);
      expect(uploads.length).toBeGreaterThanOrEqual(options.instances);
      for (const node of nodes) expect((await node.client.statistics()).CountInstances).toBe(corpus.length);
      console.log(
        `scale-out ${name}: ${uploads.length} instances (${uploads.filter((u) => u.node === 0).length} via a, ` +
          `${uploads.filter((u) => u.node === 1).length} via b) in ${Date.now() - started} ms; ` +
          `${retries.count} retries after HTTP 503 (serialization conflicts in the shared index)`,
      );
    }, 600_000);

    test('each node reads byte-exact what the other stored', async () => {
      const mismatches = await mapConcurrent(uploads, 2 * clients, async ({ source, upload, node }) => {
        const other = nodes[1 - node]!;
        const got = await other.client.instanceFileSha256(upload.ID);
        return got.sha256 === source.sha256 ? undefined : `${source.label} via node ${1 - node}`;
      });
      expect(mismatches.filter((m) => m !== undefined)).toEqual([]);
    }, 600_000);

    test('the bucket and the index agree: no orphan object, no attachment without its object', async () => {
      const indexed = await indexedUuids();
      const stored = await storedUuids();
      expect(indexed.length).toBeGreaterThanOrEqual(corpus.length);
      expect(stored.filter((uuid) => !indexed.includes(uuid))).toEqual([]); // orphans
      expect(indexed.filter((uuid) => !stored.includes(uuid))).toEqual([]); // missing
      console.log(
        `scale-out ${name}: ${indexed.length} attachments indexed, ${stored.length} objects, 0 orphans, 0 missing`,
      );
    }, 120_000);

    test('a delete through one node removes the objects; the other sees it', async () => {
      const patient = uploads[0]!.upload.ParentPatient;
      const instances = uploads.filter((u) => u.upload.ParentPatient === patient);
      const before = await indexedUuids();
      await nodes[0]!.client.deletePatient(patient);
      const after = await indexedUuids();
      const removed = before.filter((uuid) => !after.includes(uuid));
      expect(removed.length).toBeGreaterThanOrEqual(instances.length);
      const stored = await storedUuids();
      expect(stored.filter((uuid) => removed.includes(uuid))).toEqual([]);
      expect(stored).toEqual(after);
      uploads = uploads.filter((u) => u.upload.ParentPatient !== patient);
      expect((await nodes[1]!.client.statistics()).CountInstances).toBe(uploads.length);
    }, 120_000);

    test('both nodes restart; the counts still match and every instance reads back', async () => {
      for (const node of nodes) await node.restart();
      for (const node of nodes) expect((await node.client.statistics()).CountInstances).toBe(uploads.length);
      const sample = uploads.filter((_, i) => i % 10 === 0);
      const mismatches = await mapConcurrent(sample, 2 * clients, async ({ source, upload }, i) => {
        const got = await nodes[i % 2]!.client.instanceFileSha256(upload.ID);
        return got.sha256 === source.sha256 ? undefined : source.label;
      });
      expect(mismatches.filter((m) => m !== undefined)).toEqual([]);
      expect(await storedUuids()).toEqual(await indexedUuids());
    }, 300_000);
  });
}
