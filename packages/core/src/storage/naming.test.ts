import { ContentType } from './contract.js';
import { isOrthancUuid, legacyUnknownObjectName, objectName, type NamingOptions } from './naming.js';

const uuid = '0a9b3c1d-2e4f-4a6b-8c0d-1e2f3a4b5c6d';
const flat: NamingOptions = { rootPath: '', storageStructure: 'flat', encrypted: false };

describe('objectName, flat structure (the default)', () => {
  it.each([
    [ContentType.Dicom, `${uuid}.dcm`],
    [ContentType.DicomAsJson, `${uuid}.json`],
    [ContentType.DicomUntilPixelData, `${uuid}.dcm.head`],
    [ContentType.Unknown, `${uuid}.unk`],
    [1025 as ContentType, `${uuid}.unk`],
  ])('content type %s -> %s', (type, expected) => {
    expect(objectName({ uuid, type }, flat)).toBe(expected);
  });

  it.each([
    [ContentType.Dicom, `${uuid}.dcm.enc`],
    [ContentType.DicomAsJson, `${uuid}.json.enc`],
    [ContentType.DicomUntilPixelData, `${uuid}.dcm.head.enc`],
    [ContentType.Unknown, `${uuid}.unk.enc`],
  ])('encrypted, content type %s -> %s', (type, expected) => {
    expect(objectName({ uuid, type }, { ...flat, encrypted: true })).toBe(expected);
  });

  it('prefixes the root path', () => {
    expect(objectName({ uuid, type: ContentType.Dicom }, { ...flat, rootPath: 'orthanc' })).toBe(
      `orthanc/${uuid}.dcm`,
    );
    expect(objectName({ uuid, type: ContentType.Dicom }, { ...flat, rootPath: 'a/b', encrypted: true })).toBe(
      `a/b/${uuid}.dcm.enc`,
    );
  });
});

describe('objectName, legacy structure', () => {
  const legacy: NamingOptions = { rootPath: '', storageStructure: 'legacy', encrypted: false };
  it.each([ContentType.Dicom, ContentType.DicomAsJson, ContentType.DicomUntilPixelData, ContentType.Unknown])(
    'uses Orthanc layout without extension for type %s',
    (type) => {
      expect(objectName({ uuid, type }, legacy)).toBe(`0a/9b/${uuid}`);
    },
  );
  it('adds no .enc when encrypted (as the C++ plugins) and honours the root path', () => {
    expect(objectName({ uuid, type: ContentType.Dicom }, { ...legacy, encrypted: true })).toBe(
      `0a/9b/${uuid}`,
    );
    expect(objectName({ uuid, type: ContentType.Dicom }, { ...legacy, rootPath: 'root/x' })).toBe(
      `root/x/0a/9b/${uuid}`,
    );
  });
});

describe('legacyUnknownObjectName', () => {
  it('gives the .unk name of DicomUntilPixelData objects, then .enc when encrypted', () => {
    const key = { uuid, type: ContentType.DicomUntilPixelData };
    expect(legacyUnknownObjectName(key, flat)).toBe(`${uuid}.unk`);
    expect(legacyUnknownObjectName(key, { ...flat, encrypted: true, rootPath: 'r' })).toBe(
      `r/${uuid}.unk.enc`,
    );
  });
  it('is undefined when the name would not differ', () => {
    expect(legacyUnknownObjectName({ uuid, type: ContentType.Dicom }, flat)).toBeUndefined();
    expect(legacyUnknownObjectName({ uuid, type: ContentType.Unknown }, flat)).toBeUndefined();
    const legacy: NamingOptions = { ...flat, storageStructure: 'legacy' };
    expect(legacyUnknownObjectName({ uuid, type: ContentType.DicomUntilPixelData }, legacy)).toBeUndefined();
  });
});

describe('uuid validation', () => {
  it.each([
    '',
    '0A9B3C1D-2E4F-4A6B-8C0D-1E2F3A4B5C6D',
    '../../../../etc/passwd',
    '0a9b3c1d-2e4f-4a6b-8c0d-1e2f3a4b5c6',
    '0a9b3c1d-2e4f-4a6b-8c0d-1e2f3a4b5c6d0',
    '0a9b3c1d2e4f4a6b8c0d1e2f3a4b5c6d',
    '0a9b3c1d/2e4f-4a6b-8c0d-1e2f3a4b5c6d',
    '0a9b3c1d-2e4f-4a6b-8c0d-1e2f3a4b5c6g',
    ' a9b3c1d-2e4f-4a6b-8c0d-1e2f3a4b5c6d',
    '0a9b3c1d-2e4f-4a6b-8c0d-1e2f3a4b5c6d\n',
    '..9b3c1d-2e4f-4a6b-8c0d-1e2f3a4b5c6d',
  ])('refuses %j', (bad) => {
    expect(isOrthancUuid(bad)).toBe(false);
    expect(() => objectName({ uuid: bad, type: ContentType.Dicom }, flat)).toThrow(
      /invalid attachment uuid.*Orthanc uuid/,
    );
  });
  it('refuses non-strings', () => {
    expect(() => objectName({ uuid: 42 as unknown as string, type: ContentType.Dicom }, flat)).toThrow(
      /invalid attachment uuid number/,
    );
  });
  it('accepts what Orthanc generates (random v4 uuids, lowercase)', () => {
    for (let i = 0; i < 100; i++) expect(isOrthancUuid(crypto.randomUUID())).toBe(true);
  });
});
