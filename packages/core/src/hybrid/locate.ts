import type { OrthancApi } from '../gateway/forwarded-calls.js';
import { OrthancError, OrthancErrorCode } from '../gateway/forwarded-calls.js';
import type { RestAnswer, RestRequest, RestRoute } from '../gateway/services.js';
import { jsonAnswer } from '../gateway/services.js';
import type { StorageSide } from '../storage/compose.js';
import type { StoredObject } from '../storage/stored-object.js';
import { forEachLimited } from './limited.js';
import {
  listAttachments,
  storageKeyOf,
  resolveResource,
  withDescendants,
  type Attachment,
  type ResourcePath,
} from './resources.js';

/** Encryption formats that begin with 2 bytes of magic and a uint32 LE master key id. */
const ENCRYPTION_FORMATS = ['A1', 'C1'];

export const LOCATIONS_ROUTE = '/object-storage/locations/(patients|studies|series|instances)/([^/]+)';

/** The format and master key id an object's first bytes announce, or null for a plain object. */
export function encryptionOf(head: Buffer): { Format: string; MasterKeyId: number } | null {
  if (head.length < 6) return null;
  const magic = head.subarray(0, 2).toString('latin1');
  return ENCRYPTION_FORMATS.includes(magic) ? { Format: magic, MasterKeyId: head.readUInt32LE(2) } : null;
}

function describeCopy(side: StorageSide, stored: StoredObject): Record<string, unknown> {
  return {
    Storage: side.name,
    [stored.locationKind === 'path' ? 'Path' : 'ObjectName']: stored.location,
    Container: stored.container,
    StoredSize: stored.size,
    Encryption: encryptionOf(stored.head),
  };
}

async function locate(
  sides: readonly StorageSide[],
  attachment: Attachment,
): Promise<Record<string, unknown>> {
  const key = storageKeyOf(attachment);
  const copies: Record<string, unknown>[] = [];
  for (const side of sides) {
    const stored = await side.raw.inspect(key);
    if (stored !== undefined) copies.push(describeCopy(side, stored));
  }
  return {
    Resource: `/${attachment.resource}`,
    Attachment: attachment.name,
    ContentType: attachment.contentType,
    Uuid: attachment.uuid,
    Size: attachment.size,
    Storage: copies.length === 0 ? 'missing' : copies.length === 1 ? copies[0]!.Storage : 'both',
    Copies: copies,
  };
}

/**
 * `GET /object-storage/locations/{patients|studies|series|instances}/{id}`: where each attachment
 * of the resource and of its descendants is stored, read from the backends themselves.
 */
export function locationsRoute(sides: readonly StorageSide[]): RestRoute {
  return {
    pattern: LOCATIONS_ROUTE,
    async handle(request: RestRequest, orthanc: OrthancApi): Promise<RestAnswer> {
      if (request.method !== 'GET') return { status: 405, allow: 'GET' };
      const [level, id] = request.groups as [string, string];
      const resource = await resolveResource(orthanc, id);
      if (!resource.startsWith(`${level}/`)) {
        throw new OrthancError(OrthancErrorCode.UnknownResource, `${id} is not in /${level}`);
      }
      const found: Attachment[] = [];
      for (const item of await withDescendants(orthanc, resource as ResourcePath)) {
        found.push(...(await listAttachments(orthanc, item)));
      }
      // Looking into the storages is the slow part (a request per object): several at once.
      const attachments: Record<string, unknown>[] = new Array(found.length);
      await forEachLimited(found, 8, async (attachment, index) => {
        attachments[index] = await locate(sides, attachment);
      });
      const summary: Record<string, number> = { 'file-system': 0, 'object-storage': 0, both: 0, missing: 0 };
      for (const located of attachments) summary[located.Storage as string]! += 1;
      return jsonAnswer({ Resource: `/${resource}`, Summary: summary, Attachments: attachments });
    },
  };
}
