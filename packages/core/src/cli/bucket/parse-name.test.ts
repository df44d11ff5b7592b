import { ContentType } from '../../storage/contract.js';
import { objectName } from '../../storage/naming.js';
import { attachmentOfName } from './parse-name.js';

const uuid = '0f2c8a34-5b6d-4e7f-8a9b-0c1d2e3f4a5b';

describe('attachmentOfName', () => {
  it.each([
    [{ rootPath: '', storageStructure: 'flat', encrypted: false }],
    [{ rootPath: 'a/b', storageStructure: 'flat', encrypted: true }],
  ] as const)('inverts objectName for every content type (%j)', (naming) => {
    for (const type of [ContentType.Dicom, ContentType.DicomAsJson, ContentType.DicomUntilPixelData]) {
      expect(attachmentOfName(objectName({ uuid, type }, naming), naming)).toEqual({ uuid, type });
    }
  });

  it('gives the uuid without a type for legacy names, and refuses names the plugins never write', () => {
    const legacy = { rootPath: 'r', storageStructure: 'legacy', encrypted: true } as const;
    expect(attachmentOfName(`r/0f/2c/${uuid}`, legacy)).toEqual({ uuid, type: undefined });
    expect(attachmentOfName(`r/aa/2c/${uuid}`, legacy)).toBeUndefined();
    const flat = { rootPath: '', storageStructure: 'flat', encrypted: true } as const;
    expect(attachmentOfName(`${uuid}.dcm`, flat)).toBeUndefined();
    expect(attachmentOfName(`${uuid}.txt.enc`, flat)).toBeUndefined();
    expect(attachmentOfName('notes.txt.enc', flat)).toBeUndefined();
  });
});
