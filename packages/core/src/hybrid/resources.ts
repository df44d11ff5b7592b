import { OrthancError, OrthancErrorCode, type OrthancApi } from '../gateway/forwarded-calls.js';
import { ContentType, type ObjectKey } from '../storage/contract.js';

/** Orthanc's resource levels, as they appear in REST URIs. */
export const LEVELS = ['patients', 'studies', 'series', 'instances'] as const;
export type Level = (typeof LEVELS)[number];

/** A resource as `<level>/<id>`, e.g. `studies/6b9e...`. */
export type ResourcePath = `${Level}/${string}`;

/** The plural, capitalised names Orthanc uses in job contents ("Studies", ...). */
export const LEVEL_GROUP: Record<Level, string> = {
  patients: 'Patients',
  studies: 'Studies',
  series: 'Series',
  instances: 'Instances',
};

const CHILD_LEVELS: Record<Level, readonly Level[]> = {
  patients: ['studies', 'series', 'instances'],
  studies: ['series', 'instances'],
  series: ['instances'],
  instances: [],
};

const ORTHANC_ID = /^[0-9a-f]{8}(-[0-9a-f]{8}){4}$/;

export function isUnknownResource(error: unknown): boolean {
  return (
    error instanceof OrthancError &&
    (error.code === OrthancErrorCode.UnknownResource || error.code === OrthancErrorCode.InexistentItem)
  );
}

/** Checks an Orthanc id (so it is safe in a URI) and finds its level, as the C++ plugins do:
 * instance first, then series, study, patient. */
export async function resolveResource(orthanc: OrthancApi, id: string): Promise<ResourcePath> {
  if (!ORTHANC_ID.test(id)) {
    throw new OrthancError(
      OrthancErrorCode.UnknownResource,
      `${JSON.stringify(id.slice(0, 80))} is not an Orthanc resource id (5 groups of 8 lowercase hex digits)`,
    );
  }
  for (const level of ['instances', 'series', 'studies', 'patients'] as const) {
    if ((await orthanc.getIfExists(`/${level}/${id}`)) !== undefined) return `${level}/${id}`;
  }
  throw new OrthancError(OrthancErrorCode.UnknownResource, `unknown resource ${id}`);
}

/** The resource followed by all its descendants (which have attachments of their own). */
export async function withDescendants(orthanc: OrthancApi, resource: ResourcePath): Promise<ResourcePath[]> {
  const [level, id] = resource.split('/') as [Level, string];
  const all: ResourcePath[] = [resource];
  for (const child of CHILD_LEVELS[level]) {
    const children = await orthanc.get<{ ID: string }[]>(`/${level}/${id}/${child}`);
    for (const item of children) all.push(`${child}/${item.ID}`);
  }
  return all;
}

/** One attachment of a resource, as Orthanc's index knows it. */
export interface Attachment {
  readonly resource: ResourcePath;
  /** Orthanc's attachment number (1 DICOM, 3 DICOM until pixel data, 1024+ user-defined...). */
  readonly contentType: number;
  readonly name: string;
  readonly uuid: string;
  /** Bytes Orthanc gave the storage area (after its own compression, before encryption). */
  readonly size: number;
  /** MD5 of those bytes; empty when Orthanc does not store MD5s (StoreMD5ForAttachments). */
  readonly md5: string;
}

/**
 * The key the storage area got for an attachment: Orthanc passes its own three content types
 * (DICOM, DICOM as JSON, DICOM until pixel data) as they are, and every other one (user-defined
 * attachments such as 1025) as Unknown (0).
 */
export function storageKeyOf(attachment: Attachment): ObjectKey {
  const known = [ContentType.Dicom, ContentType.DicomAsJson, ContentType.DicomUntilPixelData];
  const type = known.includes(attachment.contentType)
    ? (attachment.contentType as ContentType)
    : ContentType.Unknown;
  return { uuid: attachment.uuid, type };
}

interface AttachmentInfo {
  Uuid: string;
  ContentType: number;
  CompressedSize: number;
  CompressedMD5?: string;
}

/** The attachments of a resource (not of its children); empty when the resource is gone. */
export async function listAttachments(orthanc: OrthancApi, resource: ResourcePath): Promise<Attachment[]> {
  const numbers = await orthanc.getIfExists<Record<string, number>>(`/${resource}/attachments?full`);
  if (numbers === undefined) return [];
  const attachments: Attachment[] = [];
  for (const [name, number] of Object.entries(numbers)) {
    const info = await orthanc.getIfExists<AttachmentInfo>(`/${resource}/attachments/${number}/info`);
    if (info === undefined) continue; // removed meanwhile
    attachments.push({
      resource,
      contentType: info.ContentType,
      name,
      uuid: info.Uuid,
      size: info.CompressedSize,
      md5: info.CompressedMD5 ?? '',
    });
  }
  return attachments;
}
