import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { prepareReissuable, reissue } from './reuid.js';
import { newUid, writeSyntheticInstance } from './synthetic.js';

describe('re-issuing a DICOM file under a fresh SOP Instance UID', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'oos-e2e-reuid-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('only the two UID fields change, to a new UID of the same length', async () => {
    const sop = newUid();
    const { file } = await writeSyntheticInstance(
      {
        patientId: 'REUID',
        patientName: 'RE^UID',
        studyInstanceUid: newUid(),
        seriesInstanceUid: newUid(),
        sopInstanceUid: sop,
        seriesNumber: 1,
        instanceNumber: 1,
        rows: 8,
        columns: 8,
        bitsAllocated: 8,
        seed: 1,
      },
      path.join(dir, 'a.dcm'),
    );
    const source = prepareReissuable(file)!;
    expect(source).toBeDefined();
    const first = reissue(source);
    const second = reissue(source);
    expect(first.length).toBe(source.bytes.length);
    const changed = [...first.keys()].filter((i) => first[i] !== source.bytes[i]);
    expect(changed.length).toBeGreaterThan(20);
    for (const i of changed) {
      expect(source.uidOffsets.some((o) => i >= o && i < o + source.uidFieldLength)).toBe(true);
    }
    const uid = (bytes: Buffer, offset: number) =>
      bytes.toString('latin1', offset, offset + source.uidFieldLength).replace(/\0$/, '');
    expect(uid(first, source.uidOffsets[0]!)).toBe(uid(first, source.uidOffsets[1]!));
    expect(uid(first, source.uidOffsets[0]!)).toMatch(/^2\.25\.[1-9][0-9]+$/);
    expect(uid(first, source.uidOffsets[0]!)).not.toBe(uid(second, source.uidOffsets[0]!));
    expect(uid(source.bytes, source.uidOffsets[1]!)).toBe(sop);
  });

  test('files that are not Part 10 are refused', () => {
    const junk = path.join(dir, 'junk.dcm');
    writeFileSync(junk, Buffer.alloc(300, 7));
    expect(prepareReissuable(junk)).toBeUndefined();
  });
});
