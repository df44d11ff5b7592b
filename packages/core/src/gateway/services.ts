import type { Logger } from '../logging.js';
import {
  jobRecordAnswer,
  OrthancApi,
  OrthancError,
  type InvokeAnswer,
  type InvokeRequest,
  type JobRecord,
  type OrthancChannel,
} from './forwarded-calls.js';

export interface RestRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  readonly uri: string;
  /** The route's regular expression groups. */
  readonly groups: readonly string[];
  readonly get: ReadonlyMap<string, string>;
  readonly body: Buffer;
}

export type RestAnswer =
  | { readonly status: 200; readonly contentType: string; readonly body: Buffer }
  | { readonly status: 405; readonly allow: string };

/** A REST route registered in Orthanc by the shim and served here. */
export interface RestRoute {
  /** Orthanc's route syntax: a regular expression over the URI, groups passed on. */
  readonly pattern: string;
  handle(request: RestRequest, orthanc: OrthancApi): Promise<RestAnswer>;
}

export type JobStopReason = 'success' | 'paused' | 'failure' | 'canceled';

/** A job type run by Orthanc's jobs engine and served here; its state travels with each call. */
export interface JobDefinition {
  readonly type: string;
  step(state: Record<string, unknown>, orthanc: OrthancApi): Promise<JobRecord>;
  stop(state: Record<string, unknown>, reason: JobStopReason): JobRecord;
  reset(state: Record<string, unknown>): JobRecord;
  /** The record of a job Orthanc saved before it restarted; throws when the state is unusable. */
  unserialize(state: Record<string, unknown>): JobRecord;
}

export function jsonAnswer(value: unknown): RestAnswer {
  return {
    status: 200,
    contentType: 'application/json',
    body: Buffer.from(`${JSON.stringify(value, null, 2)}\n`),
  };
}

function pairs(value: unknown): Map<string, string> {
  const map = new Map<string, string>();
  if (Array.isArray(value)) {
    for (const pair of value) {
      if (Array.isArray(pair) && typeof pair[0] === 'string' && typeof pair[1] === 'string')
        map.set(pair[0], pair[1]);
    }
  }
  return map;
}

/** A job's state; without "Type", which Orthanc adds when it saves a job and reserves for itself. */
function parseState(body: Buffer): Record<string, unknown> {
  const state: unknown = JSON.parse(body.toString('utf8'));
  if (typeof state !== 'object' || state === null || Array.isArray(state)) {
    throw new Error('a job state must be a JSON object');
  }
  const { Type: _reserved, ...rest } = state as Record<string, unknown>;
  return rest;
}

/** The routes and jobs a gateway serves, and the dispatch of forwarded calls to them. */
export class GatewayServices {
  private readonly matchers: { regex: RegExp; route: RestRoute }[];
  private readonly jobs: Map<string, JobDefinition>;

  constructor(
    readonly routes: readonly RestRoute[],
    jobs: readonly JobDefinition[],
    private readonly log: Logger,
  ) {
    this.matchers = routes.map((route) => ({ regex: new RegExp(`^${route.pattern}$`), route }));
    this.jobs = new Map(jobs.map((job) => [job.type, job]));
  }

  /** For the handshake. */
  get announcement(): { restRoutes: string[]; jobTypes: string[] } {
    return { restRoutes: this.routes.map((route) => route.pattern), jobTypes: [...this.jobs.keys()] };
  }

  async invoke(request: InvokeRequest, channel: OrthancChannel): Promise<InvokeAnswer> {
    const orthanc = new OrthancApi(channel);
    if (request.name === 'rest') return this.rest(request, orthanc);
    const job = this.jobs.get(String(request.meta.type));
    if (job === undefined)
      throw new Error(`no job type ${JSON.stringify(request.meta.type)} in this gateway`);
    const state = parseState(request.body);
    switch (request.name) {
      case 'job.step':
        return jobRecordAnswer(await job.step(state, orthanc));
      case 'job.stop':
        return jobRecordAnswer(job.stop(state, request.meta.reason as JobStopReason));
      case 'job.reset':
        return jobRecordAnswer(job.reset(state));
      case 'job.unserialize':
        return jobRecordAnswer(job.unserialize(state));
      default:
        throw new Error(`unknown forwarded call ${JSON.stringify(request.name)}`);
    }
  }

  private async rest(request: InvokeRequest, orthanc: OrthancApi): Promise<InvokeAnswer> {
    const uri = String(request.meta.uri);
    const matched = this.matchers.find((matcher) => matcher.regex.test(uri));
    const method = String(request.meta.method);
    try {
      if (matched === undefined) throw new OrthancError(17, `no route for ${uri} in this gateway`);
      const answer = await matched.route.handle(
        {
          method: method as RestRequest['method'],
          uri,
          groups: Array.isArray(request.meta.groups) ? request.meta.groups.map(String) : [],
          get: pairs(request.meta.get),
          body: request.body,
        },
        orthanc,
      );
      if (answer.status === 405) return { meta: { status: 405, allow: answer.allow } };
      return { meta: { status: 200, contentType: answer.contentType }, body: answer.body };
    } catch (error) {
      if (error instanceof OrthancError) {
        this.log.warn(`${method} ${uri}: ${error.message}`);
        return { meta: { error: error.code, details: error.message } };
      }
      throw error;
    }
  }
}
