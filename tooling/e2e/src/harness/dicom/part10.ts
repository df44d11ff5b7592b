// Minimal DICOM Part 10 writer: explicit VR little endian, enough for valid synthetic instances.

const LONG_LENGTH_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT']);

export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
export const SECONDARY_CAPTURE_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.7';
/** Our implementation class UID (2.25 = UUID-derived root, ours by construction). */
export const IMPLEMENTATION_CLASS_UID = '2.25.302657213871234911023981209381209381';

export type ElementValue = string | number | Uint8Array;

export interface Element {
  readonly group: number;
  readonly element: number;
  readonly vr: string;
  readonly value: ElementValue;
}

/** Encode a value to bytes, padded to even length (UI with NUL, text with space). */
function valueBytes(vr: string, value: ElementValue): Buffer {
  if (value instanceof Uint8Array) {
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    return bytes.length % 2 === 0 ? bytes : Buffer.concat([bytes, Buffer.alloc(1)]);
  }
  if (typeof value === 'number') {
    if (vr === 'US') {
      const b = Buffer.alloc(2);
      b.writeUInt16LE(value);
      return b;
    }
    if (vr === 'UL') {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(value);
      return b;
    }
    throw new Error(`numeric value for VR ${vr} is not supported`);
  }
  const text = Buffer.from(value, 'latin1');
  if (text.length % 2 === 0) return text;
  return Buffer.concat([text, Buffer.from(vr === 'UI' ? [0] : [0x20])]);
}

/** Header (tag, VR, length) of an element whose value has `length` bytes. */
export function elementHeader(group: number, element: number, vr: string, length: number): Buffer {
  const long = LONG_LENGTH_VRS.has(vr);
  const header = Buffer.alloc(long ? 12 : 8);
  header.writeUInt16LE(group, 0);
  header.writeUInt16LE(element, 2);
  header.write(vr, 4, 'latin1');
  if (long) header.writeUInt32LE(length, 8);
  else {
    if (length > 0xffff) throw new Error(`value of (${group.toString(16)},${element.toString(16)}) too long`);
    header.writeUInt16LE(length, 6);
  }
  return header;
}

export function encodeElement({ group, element, vr, value }: Element): Buffer {
  const bytes = valueBytes(vr, value);
  return Buffer.concat([elementHeader(group, element, vr, bytes.length), bytes]);
}

function sortElements(elements: readonly Element[]): Element[] {
  return [...elements].sort((a, b) => a.group - b.group || a.element - b.element);
}

/** Preamble, "DICM" and the file meta information group (0002) for one instance. */
export function filePreambleAndMeta(
  sopClassUid: string,
  sopInstanceUid: string,
  transferSyntax: string,
): Buffer {
  const meta = Buffer.concat(
    [
      { group: 2, element: 0x0001, vr: 'OB', value: Uint8Array.from([0, 1]) },
      { group: 2, element: 0x0002, vr: 'UI', value: sopClassUid },
      { group: 2, element: 0x0003, vr: 'UI', value: sopInstanceUid },
      { group: 2, element: 0x0010, vr: 'UI', value: transferSyntax },
      { group: 2, element: 0x0012, vr: 'UI', value: IMPLEMENTATION_CLASS_UID },
    ].map(encodeElement),
  );
  const groupLength = encodeElement({ group: 2, element: 0x0000, vr: 'UL', value: meta.length });
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM', 'latin1'), groupLength, meta]);
}

/** Encode data-set elements (not the pixel data) in ascending tag order. */
export function encodeDataSet(elements: readonly Element[]): Buffer {
  return Buffer.concat(sortElements(elements).map(encodeElement));
}
