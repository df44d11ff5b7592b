import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import {
  EXPLICIT_VR_LITTLE_ENDIAN,
  SECONDARY_CAPTURE_IMAGE_STORAGE,
  elementHeader,
  encodeDataSet,
  filePreambleAndMeta,
  type Element,
} from './part10.js';

/** What one synthetic instance holds. */
export interface SyntheticSpec {
  readonly patientId: string;
  readonly patientName: string;
  readonly studyInstanceUid: string;
  readonly seriesInstanceUid: string;
  readonly sopInstanceUid: string;
  readonly seriesNumber: number;
  readonly instanceNumber: number;
  readonly rows: number;
  readonly columns: number;
  readonly bitsAllocated: 8 | 16;
  /** Varies the pixel pattern so that no two instances share pixel bytes. */
  readonly seed: number;
}

export interface WrittenInstance {
  readonly file: string;
  readonly size: number;
  readonly sha256: string;
}

/** A fresh DICOM UID under 2.25 (UUID as a decimal integer). */
export function newUid(): string {
  return '2.25.' + BigInt('0x' + randomUUID().replaceAll('-', '')).toString(10);
}

/** Header of the instance: preamble, file meta and every element up to the pixel data's header. */
function header(spec: SyntheticSpec, pixelBytes: number): Buffer {
  const { bitsAllocated } = spec;
  const elements: Element[] = [
    { group: 0x0008, element: 0x0008, vr: 'CS', value: 'DERIVED\\SECONDARY' },
    { group: 0x0008, element: 0x0016, vr: 'UI', value: SECONDARY_CAPTURE_IMAGE_STORAGE },
    { group: 0x0008, element: 0x0018, vr: 'UI', value: spec.sopInstanceUid },
    { group: 0x0008, element: 0x0020, vr: 'DA', value: '20240102' },
    { group: 0x0008, element: 0x0030, vr: 'TM', value: '101500' },
    { group: 0x0008, element: 0x0050, vr: 'SH', value: `ACC${spec.seed}` },
    { group: 0x0008, element: 0x0060, vr: 'CS', value: 'OT' },
    { group: 0x0008, element: 0x0064, vr: 'CS', value: 'WSD' },
    { group: 0x0008, element: 0x1030, vr: 'LO', value: 'orthanc-object-storage e2e' },
    { group: 0x0010, element: 0x0010, vr: 'PN', value: spec.patientName },
    { group: 0x0010, element: 0x0020, vr: 'LO', value: spec.patientId },
    { group: 0x0020, element: 0x000d, vr: 'UI', value: spec.studyInstanceUid },
    { group: 0x0020, element: 0x000e, vr: 'UI', value: spec.seriesInstanceUid },
    { group: 0x0020, element: 0x0011, vr: 'IS', value: String(spec.seriesNumber) },
    { group: 0x0020, element: 0x0013, vr: 'IS', value: String(spec.instanceNumber) },
    { group: 0x0028, element: 0x0002, vr: 'US', value: 1 },
    { group: 0x0028, element: 0x0004, vr: 'CS', value: 'MONOCHROME2' },
    { group: 0x0028, element: 0x0010, vr: 'US', value: spec.rows },
    { group: 0x0028, element: 0x0011, vr: 'US', value: spec.columns },
    { group: 0x0028, element: 0x0100, vr: 'US', value: bitsAllocated },
    { group: 0x0028, element: 0x0101, vr: 'US', value: bitsAllocated === 16 ? 12 : 8 },
    { group: 0x0028, element: 0x0102, vr: 'US', value: bitsAllocated === 16 ? 11 : 7 },
    { group: 0x0028, element: 0x0103, vr: 'US', value: 0 },
  ];
  const paddedPixelBytes = pixelBytes + (pixelBytes % 2);
  return Buffer.concat([
    filePreambleAndMeta(SECONDARY_CAPTURE_IMAGE_STORAGE, spec.sopInstanceUid, EXPLICIT_VR_LITTLE_ENDIAN),
    encodeDataSet(elements),
    elementHeader(0x7fe0, 0x0010, bitsAllocated === 16 ? 'OW' : 'OB', paddedPixelBytes),
  ]);
}

/** One row of pixels: a diagonal gradient shifted by the seed, within BitsStored. */
function pixelRow(spec: SyntheticSpec, y: number): Buffer {
  const { columns, bitsAllocated, seed } = spec;
  if (bitsAllocated === 8) {
    const row = Buffer.allocUnsafe(columns);
    for (let x = 0; x < columns; x++) row[x] = (x + y * 3 + seed * 7) & 0xff;
    return row;
  }
  const row = Buffer.allocUnsafe(columns * 2);
  for (let x = 0; x < columns; x++) row.writeUInt16LE((x * 5 + y * 3 + seed * 11) & 0x0fff, x * 2);
  return row;
}

/** Total size in bytes of the file `writeSyntheticInstance` writes for `spec`. */
export function syntheticSize(spec: SyntheticSpec): number {
  const pixelBytes = spec.rows * spec.columns * (spec.bitsAllocated / 8);
  return header(spec, pixelBytes).length + pixelBytes + (pixelBytes % 2);
}

/** Write the instance to `file`, streamed row by row (bounded memory whatever the size). */
export async function writeSyntheticInstance(spec: SyntheticSpec, file: string): Promise<WrittenInstance> {
  const pixelBytes = spec.rows * spec.columns * (spec.bitsAllocated / 8);
  const hash = createHash('sha256');
  const out = createWriteStream(file);
  let size = 0;
  const write = async (chunk: Buffer): Promise<void> => {
    hash.update(chunk);
    size += chunk.length;
    if (!out.write(chunk)) await once(out, 'drain');
  };
  await write(header(spec, pixelBytes));
  // Batch rows into ~1 MiB writes.
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for (let y = 0; y < spec.rows; y++) {
    const row = pixelRow(spec, y);
    pending.push(row);
    pendingBytes += row.length;
    if (pendingBytes >= 1 << 20) {
      await write(Buffer.concat(pending));
      pending = [];
      pendingBytes = 0;
    }
  }
  if (pixelBytes % 2 === 1) pending.push(Buffer.alloc(1));
  if (pending.length > 0) await write(Buffer.concat(pending));
  out.end();
  await once(out, 'finish');
  return { file, size, sha256: hash.digest('hex') };
}
