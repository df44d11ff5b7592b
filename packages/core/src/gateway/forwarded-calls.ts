// Forwarded calls: what the shim forwards besides storage (see protocol.ts for the framing).
//
// Invoke names and their metadata (JSON), shim -> gateway:
//   "rest"             {"method","uri","groups":[..],"get":[[key,value],..]} + request body
//                      answer {"status":200,"contentType"} + body | {"status":n,"allow"} |
//                             {"error":<OrthancPluginErrorCode>,"details"}
//   "job.step"         {"type"} + serialized state     answer: a job record with "result"
//   "job.stop"         {"type","reason"} + state        answer: a job record
//   "job.reset"        {"type"} + state                 answer: a job record
//   "job.unserialize"  {"type"} + state                 answer: a job record
// A job record is meta {"progress":0..1,"result":"continue"|"success"|"failure"} and body
// `<content JSON>\n<serialized state JSON>` (both single-line): the shim keeps only that, so the
// gateway holds no job state and a restarted gateway or Orthanc carries on.
//
// Requests of the gateway to Orthanc (OrthancRequest), answered {"error":0|code,...} + body:
//   {"call":"rest","method":"GET|POST|PUT|DELETE","uri","afterPlugins"?:bool} + body
//   {"call":"submit-job","type","priority"} + job record      answer adds "id"

/** Orthanc's error codes (OrthancPluginErrorCode) that the gateway answers with. */
export enum OrthancErrorCode {
  InternalError = -1,
  Plugin = 1,
  ParameterOutOfRange = 3,
  InexistentItem = 7,
  BadRequest = 8,
  InexistentFile = 13,
  BadFileFormat = 15,
  UnknownResource = 17,
  CorruptedFile = 20,
}

/** A forwarded call as the gateway receives it. */
export interface InvokeRequest {
  readonly name: string;
  readonly meta: Record<string, unknown>;
  readonly body: Buffer;
}

export interface InvokeAnswer {
  readonly meta: Record<string, unknown>;
  readonly body?: Buffer;
}

/** The way back to Orthanc during a forwarded call. */
export interface OrthancChannel {
  request(meta: Record<string, unknown>, body?: Buffer): Promise<InvokeAnswer>;
}

export type InvokeHandler = (request: InvokeRequest, orthanc: OrthancChannel) => Promise<InvokeAnswer>;

/** An error to answer Orthanc's way: the REST client gets Orthanc's JSON error with the details. */
export class OrthancError extends Error {
  constructor(
    readonly code: OrthancErrorCode | number,
    message: string,
  ) {
    super(message);
    this.name = 'OrthancError';
  }
}

/** Orthanc's REST API (and jobs engine), reached through the shim. */
export class OrthancApi {
  constructor(private readonly channel: OrthancChannel) {}

  private async call(meta: Record<string, unknown>, body?: Buffer): Promise<Buffer> {
    const answer = await this.channel.request(meta, body);
    const error = typeof answer.meta.error === 'number' ? answer.meta.error : 0;
    if (error !== 0) {
      throw new OrthancError(
        error,
        `Orthanc answered error ${error} to ${String(meta.method ?? meta.call)} ${String(meta.uri ?? '')}`.trim(),
      );
    }
    return answer.body ?? Buffer.alloc(0);
  }

  async get<T = unknown>(uri: string): Promise<T> {
    const body = await this.call({ call: 'rest', method: 'GET', uri });
    return JSON.parse(body.toString('utf8')) as T;
  }

  /** GET that answers undefined when Orthanc does not know the resource. */
  async getIfExists<T = unknown>(uri: string): Promise<T | undefined> {
    try {
      return await this.get<T>(uri);
    } catch (error) {
      if (error instanceof OrthancError && error.code === OrthancErrorCode.UnknownResource) return undefined;
      throw error;
    }
  }

  async post<T = unknown>(uri: string, body: unknown): Promise<T> {
    const answer = await this.call({ call: 'rest', method: 'POST', uri }, Buffer.from(JSON.stringify(body)));
    return JSON.parse(answer.toString('utf8')) as T;
  }

  /** Submits a job whose callbacks this gateway serves; answers its id. */
  async submitJob(type: string, record: JobRecord, priority: number): Promise<string> {
    const answer = await this.channel.request(
      { call: 'submit-job', type, priority, progress: record.progress },
      encodeJobRecordBody(record),
    );
    const error = typeof answer.meta.error === 'number' ? answer.meta.error : 0;
    if (error !== 0 || typeof answer.meta.id !== 'string') {
      throw new OrthancError(
        error || OrthancErrorCode.InternalError,
        `Orthanc refused to submit the ${type} job`,
      );
    }
    return answer.meta.id;
  }
}

/** What the shim keeps of a job between callbacks. */
export interface JobRecord {
  readonly progress: number;
  /** Shown in /jobs/{id} as "Content". */
  readonly content: Record<string, unknown>;
  /** Everything the job needs to carry on: saved by Orthanc, given back to each callback. */
  readonly state: Record<string, unknown>;
  readonly result?: 'continue' | 'success' | 'failure';
}

export function encodeJobRecordBody(record: JobRecord): Buffer {
  return Buffer.from(`${JSON.stringify(record.content)}\n${JSON.stringify(record.state)}`, 'utf8');
}

export function jobRecordAnswer(record: JobRecord): InvokeAnswer {
  return {
    meta: { progress: record.progress, ...(record.result ? { result: record.result } : {}) },
    body: encodeJobRecordBody(record),
  };
}
