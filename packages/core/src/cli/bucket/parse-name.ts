import { ContentType, type ObjectKey } from '../../storage/contract.js';
import { isOrthancUuid, type NamingOptions } from '../../storage/naming.js';

const EXTENSIONS: ReadonlyArray<[string, ContentType]> = [
  ['.dcm.head', ContentType.DicomUntilPixelData],
  ['.dcm', ContentType.Dicom],
  ['.json', ContentType.DicomAsJson],
  ['.unk', ContentType.Unknown],
];

/**
 * The attachment an object name stands for, or undefined for a name these plugins never write.
 * With the `legacy` structure the name has no extension: the type is undefined.
 */
export function attachmentOfName(
  name: string,
  naming: NamingOptions,
): { uuid: string; type: ContentType | undefined } | undefined {
  const root = naming.rootPath === '' ? '' : `${naming.rootPath}/`;
  if (!name.startsWith(root)) return undefined;
  let rest = name.slice(root.length);
  if (naming.storageStructure === 'legacy') {
    const match = /^([0-9a-f]{2})\/([0-9a-f]{2})\/(.+)$/.exec(rest);
    if (match === null || !isOrthancUuid(match[3]) || !match[3].startsWith(match[1]! + match[2]!)) {
      return undefined;
    }
    return { uuid: match[3], type: undefined };
  }
  if (naming.encrypted) {
    if (!rest.endsWith('.enc')) return undefined;
    rest = rest.slice(0, -'.enc'.length);
  }
  const uuid = rest.slice(0, 36);
  if (!isOrthancUuid(uuid)) return undefined;
  const extension = EXTENSIONS.find(([ext]) => rest.slice(36) === ext);
  return extension === undefined ? undefined : { uuid, type: extension[1] };
}

export function sameAttachment(a: ObjectKey, uuid: string, type: ContentType | undefined): boolean {
  return a.uuid === uuid && (type === undefined || a.type === type);
}
