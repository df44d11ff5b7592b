// The harness itself against Orthanc's built-in storage: proves the generator writes DICOM that
// Orthanc accepts and renders, and that the server helpers start, restart and stop by PID.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isAlive } from '@orthanc-object-storage/servers';
import { generateCorpus, type CorpusFile } from './dicom/corpus.js';
import { OrthancServer } from './orthanc.js';
import { mapConcurrent } from './parallel.js';
import { PNG_SIGNATURE } from './rest.js';

describe('e2e harness with Orthanc built-in storage', () => {
  let workDir: string;
  let orthanc: OrthancServer;
  let corpus: CorpusFile[];

  beforeAll(async () => {
    workDir = mkdtempSync(path.join(os.tmpdir(), 'oos-e2e-harness-'));
    corpus = await generateCorpus(path.join(workDir, 'dicom'), {
      patients: 2,
      studiesPerPatient: 1,
      seriesPerStudy: 2,
      instancesPerSeries: 3,
      largeInstanceBytes: 0,
      patientPrefix: 'HARNESS',
    });
    orthanc = await OrthancServer.start({ workDir: path.join(workDir, 'orthanc') });
  }, 60_000);

  afterAll(async () => {
    await orthanc?.stop();
    rmSync(workDir, { recursive: true, force: true });
  });

  test('generated instances round-trip, render and keep their tags across a restart', async () => {
    const uploaded = await mapConcurrent(corpus, 4, (file) => orthanc.client.uploadFile(file.file));
    expect(uploaded.map((u) => u.Status)).toEqual(corpus.map(() => 'Success'));
    expect((await orthanc.client.statistics()).CountInstances).toBe(corpus.length);
    expect((await orthanc.client.statistics()).CountPatients).toBe(2);

    const firstPid = orthanc.pid!;
    await orthanc.restart();
    expect(isAlive(firstPid)).toBe(false);
    expect(orthanc.pid).not.toBe(firstPid);

    for (const [index, file] of corpus.entries()) {
      const id = uploaded[index]!.ID;
      const downloaded = await orthanc.client.instanceFileSha256(id);
      expect(downloaded).toEqual({ sha256: file.sha256, size: file.size });
      const tags = await orthanc.client.simplifiedTags(id);
      expect(tags['PhotometricInterpretation']).toBe('MONOCHROME2');
      expect(tags['PatientID']).toMatch(/^HARNESS-P[01]$/);
      const png = await orthanc.client.preview(id);
      expect(png.subarray(0, 8)).toEqual(PNG_SIGNATURE);
    }
  });

  test('stop ends the process and writes the log', async () => {
    const pid = orthanc.pid!;
    await orthanc.stop();
    expect(isAlive(pid)).toBe(false);
    expect(orthanc.readLog()).toContain('Orthanc has stopped');
  });
});
