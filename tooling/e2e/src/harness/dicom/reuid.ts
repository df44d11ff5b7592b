import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';

// Re-issue a real DICOM file under a fresh SOP Instance UID, so one file can be ingested many
// times as distinct instances. The new UID has the same length, so the bytes are patched in place
// and no length or offset changes.

const LONG_LENGTH_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT']);
const IMPLICIT_OR_BIG_ENDIAN = new Set([
  '1.2.840.10008.1.2',
  '1.2.840.10008.1.2.2',
  '1.2.840.10008.1.2.1.99',
]);

export interface ReissuableFile {
  readonly file: string;
  readonly bytes: Buffer;
  /** Offsets of the SOP Instance UID's value: in the file meta and in the data set. */
  readonly uidOffsets: readonly number[];
  /** Length of the UID's value field, padding included. */
  readonly uidFieldLength: number;
}

interface Found {
  readonly group: number;
  readonly element: number;
  readonly valueOffset: number;
  readonly length: number;
}

/** Walk explicit-VR little-endian elements from `offset`, until `stop` says so or a length is undefined. */
function* walkExplicitLittleEndian(bytes: Buffer, offset: number, end: number): Generator<Found> {
  while (offset + 8 <= end) {
    const group = bytes.readUInt16LE(offset);
    const element = bytes.readUInt16LE(offset + 2);
    const vr = bytes.toString('latin1', offset + 4, offset + 6);
    const long = LONG_LENGTH_VRS.has(vr);
    const length = long ? bytes.readUInt32LE(offset + 8) : bytes.readUInt16LE(offset + 6);
    const valueOffset = offset + (long ? 12 : 8);
    if (length === 0xffffffff) return; // undefined length: stop, we only need the first elements
    yield { group, element, valueOffset, length };
    offset = valueOffset + length;
  }
}

/** Prepare `file` for re-issuing; undefined when it is not Part 10 explicit VR little endian. */
export function prepareReissuable(file: string): ReissuableFile | undefined {
  const bytes = readFileSync(file);
  if (bytes.length < 144 || bytes.toString('latin1', 128, 132) !== 'DICM') return undefined;
  let metaEnd = 0;
  let transferSyntax = '';
  const uidOffsets: number[] = [];
  let uidFieldLength = -1;
  let uid = '';
  for (const e of walkExplicitLittleEndian(bytes, 132, bytes.length)) {
    if (e.group !== 2) break;
    if (e.element === 0x0000) metaEnd = e.valueOffset + 4 + bytes.readUInt32LE(e.valueOffset);
    if (e.element === 0x0010)
      transferSyntax = bytes.toString('latin1', e.valueOffset, e.valueOffset + e.length);
    if (e.element === 0x0003) {
      uidOffsets.push(e.valueOffset);
      uidFieldLength = e.length;
      uid = bytes.toString('latin1', e.valueOffset, e.valueOffset + e.length);
    }
  }
  if (metaEnd === 0 || uidFieldLength < 12) return undefined;
  if (IMPLICIT_OR_BIG_ENDIAN.has(transferSyntax.replace(/\0+$/, '').trim())) return undefined;
  for (const e of walkExplicitLittleEndian(bytes, metaEnd, bytes.length)) {
    if (e.group > 0x0008 || (e.group === 0x0008 && e.element > 0x0018)) break;
    if (e.group === 0x0008 && e.element === 0x0018) {
      if (
        e.length !== uidFieldLength ||
        bytes.toString('latin1', e.valueOffset, e.valueOffset + e.length) !== uid
      ) {
        return undefined;
      }
      uidOffsets.push(e.valueOffset);
    }
  }
  // Exactly one in the file meta and one in the data set.
  if (uidOffsets.length !== 2) return undefined;
  return { file, bytes, uidOffsets, uidFieldLength };
}

/** A copy of the file under a fresh, random SOP Instance UID of the same length (2.25.<digits>). */
export function reissue(source: ReissuableFile): Buffer {
  const padded = source.bytes[source.uidOffsets[0]! + source.uidFieldLength - 1] === 0;
  const digits = source.uidFieldLength - (padded ? 1 : 0) - '2.25.'.length;
  let value = '2.25.' + String(randomInt(1, 10));
  for (let i = 1; i < digits; i++) value += String(randomInt(0, 10));
  if (padded) value += '\0';
  const copy = Buffer.from(source.bytes);
  for (const offset of source.uidOffsets) copy.write(value, offset, 'latin1');
  return copy;
}
