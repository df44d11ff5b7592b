import type { JobRecord, OrthancApi } from '../gateway/forwarded-calls.js';
import { OrthancError, OrthancErrorCode } from '../gateway/forwarded-calls.js';
import type {
  JobDefinition,
  JobStopReason,
  RestAnswer,
  RestRequest,
  RestRoute,
} from '../gateway/services.js';
import { jsonAnswer } from '../gateway/services.js';
import type { Logger } from '../logging.js';
import type { StorageSide, StorageSideName } from '../storage/compose.js';
import { forEachLimited } from './limited.js';
import { moveAttachment } from './move-attachment.js';
import {
  LEVEL_GROUP,
  LEVELS,
  listAttachments,
  resolveResource,
  withDescendants,
  type Attachment,
  type Level,
  type ResourcePath,
} from './resources.js';

export const MOVE_STORAGE_JOB = 'MoveStorage';
const TARGETS: readonly StorageSideName[] = ['file-system', 'object-storage'];
/** A step ends after this many resources or this long, so pause and cancel stay responsive. */
const STEP_MAX_RESOURCES = 32;
const STEP_MAX_MS = 2000;
/** Attachments moved at once within a step. */
const PARALLEL_MOVES = 4;
const KEPT_ERRORS = 20;

/** Everything the job needs to carry on; saved by Orthanc, given back at each step. */
interface MoveState {
  readonly version: 1;
  readonly target: StorageSideName;
  /** The resources asked for, by level group ("Studies": [...]), shown in the job's content. */
  readonly requested: Record<string, string[]>;
  /** The resources whose own attachments move: those asked for and all their descendants. */
  readonly queue: ResourcePath[];
  readonly position: number;
  readonly moved: number;
  readonly alreadyOnTarget: number;
  readonly failed: number;
  readonly bytes: number;
  readonly errors: string[];
}

function parseState(value: Record<string, unknown>): MoveState {
  const state = value as Partial<MoveState>;
  const valid =
    state.version === 1 &&
    TARGETS.includes(state.target as StorageSideName) &&
    Array.isArray(state.queue) &&
    state.queue.every((item) => typeof item === 'string' && LEVELS.includes(item.split('/')[0] as Level)) &&
    Number.isSafeInteger(state.position) &&
    typeof state.requested === 'object';
  if (!valid) throw new Error('not a MoveStorage job state of this plugin');
  return {
    ...state,
    moved: state.moved ?? 0,
    alreadyOnTarget: state.alreadyOnTarget ?? 0,
    failed: state.failed ?? 0,
    bytes: state.bytes ?? 0,
    errors: state.errors ?? [],
  } as MoveState;
}

function recordOf(state: MoveState, result?: JobRecord['result']): JobRecord {
  const total = state.queue.length;
  return {
    progress: total === 0 ? 1 : state.position / total,
    content: {
      ...state.requested,
      TargetStorage: state.target,
      ResourcesTotal: total,
      ResourcesDone: state.position,
      AttachmentsMoved: state.moved,
      AttachmentsAlreadyOnTarget: state.alreadyOnTarget,
      AttachmentsFailed: state.failed,
      BytesMoved: state.bytes,
      ...(state.errors.length > 0 ? { Errors: state.errors } : {}),
    },
    state: state as unknown as Record<string, unknown>,
    ...(result ? { result } : {}),
  };
}

function restart(state: MoveState): MoveState {
  return { ...state, position: 0, moved: 0, alreadyOnTarget: 0, failed: 0, bytes: 0, errors: [] };
}

/** The MoveStorage job (the C++ plugins' type name): moves the attachments of every level. */
export function moveStorageJob(sides: readonly StorageSide[], log: Logger): JobDefinition {
  const side = (name: StorageSideName): StorageSide => {
    const found = sides.find((candidate) => candidate.name === name);
    if (found === undefined) throw new Error(`no ${name} side: HybridMode is Disabled`);
    return found;
  };
  return {
    type: MOVE_STORAGE_JOB,
    async step(value, orthanc) {
      let state = parseState(value);
      const to = side(state.target);
      const from = side(state.target === 'file-system' ? 'object-storage' : 'file-system');
      // A step takes the next resources (bounded in number, and in time while listing them),
      // then moves all their attachments, several at once.
      const started = Date.now();
      const batch: ResourcePath[] = [];
      const attachments: Attachment[] = [];
      while (
        state.position + batch.length < state.queue.length &&
        batch.length < STEP_MAX_RESOURCES &&
        Date.now() - started < STEP_MAX_MS
      ) {
        const resource = state.queue[state.position + batch.length]!;
        batch.push(resource);
        attachments.push(...(await listAttachments(orthanc, resource)));
      }
      let { moved, alreadyOnTarget, failed, bytes } = state;
      const errors = [...state.errors];
      await forEachLimited(attachments, PARALLEL_MOVES, async (attachment) => {
        try {
          const outcome = await moveAttachment(attachment, from, to);
          if (outcome.moved) {
            moved++;
            bytes += outcome.bytes;
          } else {
            alreadyOnTarget++;
          }
        } catch (error) {
          failed++;
          const message = error instanceof Error ? error.message : String(error);
          log.error(`MoveStorage: ${message}`);
          if (errors.length < KEPT_ERRORS) errors.push(message);
        }
      });
      state = {
        ...state,
        position: state.position + batch.length,
        moved,
        alreadyOnTarget,
        failed,
        bytes,
        errors,
      };
      if (state.position < state.queue.length) return recordOf(state, 'continue');
      log.info(
        `MoveStorage to ${state.target}: ${state.moved} attachments moved (${state.bytes} bytes), ` +
          `${state.alreadyOnTarget} already there, ${state.failed} failed`,
      );
      return recordOf(state, state.failed > 0 ? 'failure' : 'success');
    },
    stop(value: Record<string, unknown>, _reason: JobStopReason) {
      return recordOf(parseState(value));
    },
    reset(value) {
      return recordOf(restart(parseState(value)));
    },
    unserialize(value) {
      return recordOf(parseState(value));
    },
  };
}

interface MoveRequest {
  resources: string[];
  target: StorageSideName;
  asynchronous: boolean;
  priority: number;
}

function badRequest(message: string): OrthancError {
  return new OrthancError(OrthancErrorCode.BadFileFormat, `/move-storage: ${message}`);
}

function parseMoveRequest(body: Buffer): MoveRequest {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw badRequest('the body must be a JSON object');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw badRequest('the body must be a JSON object');
  const request = value as Record<string, unknown>;
  const resources = request.Resources;
  if (!Array.isArray(resources) || !resources.every((item) => typeof item === 'string')) {
    throw badRequest('"Resources" must be an array of Orthanc ids of patients, studies, series or instances');
  }
  const target = request.TargetStorage;
  if (!TARGETS.includes(target as StorageSideName)) {
    throw badRequest(
      `"TargetStorage" is ${JSON.stringify(target)}; allowed: "file-system" or "object-storage"`,
    );
  }
  let asynchronous = false;
  for (const key of ['Synchronous', 'Asynchronous'] as const) {
    if (request[key] === undefined) continue;
    if (typeof request[key] !== 'boolean') throw badRequest(`"${key}" must be true or false`);
    asynchronous = key === 'Asynchronous' ? request[key] : !request[key];
  }
  const priority = request.Priority ?? 0;
  if (!Number.isSafeInteger(priority)) throw badRequest('"Priority" must be an integer');
  return {
    resources: resources as string[],
    target: target as StorageSideName,
    asynchronous,
    priority: priority as number,
  };
}

interface JobStatus {
  State: string;
  Content?: unknown;
  ErrorCode?: number;
  ErrorDescription?: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits for a job to end, as Orthanc's synchronous jobs answer: its content, or its error. */
async function awaitJob(orthanc: OrthancApi, id: string): Promise<unknown> {
  for (;;) {
    await sleep(100);
    const status = await orthanc.get<JobStatus>(`/jobs/${id}`);
    if (status.State === 'Success') return status.Content ?? {};
    if (status.State === 'Failure' || status.State === 'Paused') {
      const errors = (status.Content as { Errors?: string[] } | undefined)?.Errors ?? [];
      throw new OrthancError(
        status.ErrorCode && status.ErrorCode > 0 ? status.ErrorCode : OrthancErrorCode.InternalError,
        `MoveStorage job ${id} ended in state ${status.State}` +
          (errors.length > 0 ? `: ${errors.join('; ')}` : ''),
      );
    }
  }
}

/** `POST /move-storage`, as the C++ plugins answer it: the job's content, or its id when asynchronous. */
export function moveStorageRoute(): RestRoute {
  return {
    pattern: '/move-storage',
    async handle(request: RestRequest, orthanc: OrthancApi): Promise<RestAnswer> {
      if (request.method !== 'POST') return { status: 405, allow: 'POST' };
      const move = parseMoveRequest(request.body);
      const requested: Record<string, string[]> = {};
      const queue: ResourcePath[] = [];
      const seen = new Set<string>();
      for (const id of move.resources) {
        const resource = await resolveResource(orthanc, id);
        const [level] = resource.split('/') as [Level];
        (requested[LEVEL_GROUP[level]] ??= []).push(id);
        for (const item of await withDescendants(orthanc, resource)) {
          if (!seen.has(item)) {
            seen.add(item);
            queue.push(item);
          }
        }
      }
      const state: MoveState = {
        version: 1,
        target: move.target,
        requested,
        queue,
        position: 0,
        moved: 0,
        alreadyOnTarget: 0,
        failed: 0,
        bytes: 0,
        errors: [],
      };
      const id = await orthanc.submitJob(MOVE_STORAGE_JOB, recordOf(state), move.priority);
      if (move.asynchronous) return jsonAnswer({ ID: id, Path: `/jobs/${id}` });
      return jsonAnswer(await awaitJob(orthanc, id));
    },
  };
}
