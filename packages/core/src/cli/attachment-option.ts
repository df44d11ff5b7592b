import { basename } from 'node:path';
import { ContentType, type ObjectKey } from '../storage/contract.js';
import { UsageError } from './command.js';

const TYPE_NAMES: Record<string, ContentType> = {
  unknown: ContentType.Unknown,
  dicom: ContentType.Dicom,
  json: ContentType.DicomAsJson,
  'until-pixel-data': ContentType.DicomUntilPixelData,
};
const TYPE_BY_EXTENSION: Record<string, ContentType> = {
  '.dcm': ContentType.Dicom,
  '.json': ContentType.DicomAsJson,
  '.dcm.head': ContentType.DicomUntilPixelData,
  '.unk': ContentType.Unknown,
};
const FLAT_NAME =
  /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(\.dcm\.head|\.dcm|\.json|\.unk)(\.enc)?$/;
const UUID = /^[\x21-\x7e]{36}$/;

export const attachmentOptions = {
  uuid: { type: 'string' },
  'content-type': { type: 'string' },
} as const;

export const attachmentHelp = `  --uuid UUID           the attachment's uuid (36 characters), as Orthanc gives it
  --content-type TYPE   dicom, json, until-pixel-data, unknown, or Orthanc's number`;

/** `--content-type`: a name or Orthanc's number (uint32). */
function parseContentType(value: string): ContentType {
  const named = TYPE_NAMES[value];
  if (named !== undefined) return named;
  if (/^[0-9]{1,10}$/.test(value) && Number(value) <= 0xffff_ffff) return Number(value) as ContentType;
  throw new UsageError(
    `--content-type ${JSON.stringify(value)} is not a content type: give ${Object.keys(TYPE_NAMES).join(', ')} or a number`,
  );
}

/** The attachment a flat object name (`<uuid>.dcm.enc` ...) names, if it is one. */
export function attachmentFromName(path: string): ObjectKey | undefined {
  const match = FLAT_NAME.exec(basename(path));
  if (match === null) return undefined;
  return { uuid: match[1]!, type: TYPE_BY_EXTENSION[match[2]!]! };
}

/**
 * The attachment from `--uuid` and `--content-type`, either of which may come from `fromName`
 * (an object name as the plugins give it). Undefined when neither option nor name gives one.
 */
export function attachmentOf(
  values: { uuid?: string; 'content-type'?: string },
  fromName: ObjectKey | undefined,
): ObjectKey | undefined {
  const uuid = values.uuid ?? fromName?.uuid;
  const typeText = values['content-type'];
  const type = typeText === undefined ? fromName?.type : parseContentType(typeText);
  if (uuid === undefined && type === undefined) return undefined;
  if (uuid === undefined || !UUID.test(uuid)) {
    throw new UsageError(
      `--uuid must be the attachment's 36-character uuid${uuid === undefined ? ' (missing)' : `, got ${JSON.stringify(uuid)}`}`,
    );
  }
  if (type === undefined)
    throw new UsageError('--content-type is missing (dicom, json, until-pixel-data, unknown or a number)');
  return { uuid, type };
}
