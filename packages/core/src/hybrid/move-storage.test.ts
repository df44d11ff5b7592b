import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { OrthancApi, type InvokeAnswer, type JobRecord } from '../gateway/forwarded-calls.js';
import { silentLogger } from '../logging.js';
import type { StorageSide } from '../storage/compose.js';
import { ContentType } from '../storage/contract.js';
import { FileSystemStorage } from '../storage/fs-storage.js';
import { moveStorageJob, moveStorageRoute } from './move-storage.js';

const id = (n: number) => `0000000${n}-00000000-00000000-00000000-00000000`.slice(-44);
const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

/** Orthanc's REST API for one study of `count` instances, each with one DICOM attachment. */
class FakeOrthanc {
  readonly bodies = new Map<number, Buffer>();
  submitted: { type: string; record: Buffer; priority: number } | undefined;

  constructor(readonly count: number) {
    for (let n = 1; n <= count; n++) this.bodies.set(n, randomBytes(1000 + n));
  }

  private json(value: unknown): InvokeAnswer {
    return { meta: { error: 0 }, body: Buffer.from(JSON.stringify(value)) };
  }

  readonly api = new OrthancApi({
    request: async (meta, body) => {
      if (meta.call === 'submit-job') {
        this.submitted = { type: String(meta.type), record: body!, priority: Number(meta.priority) };
        return { meta: { error: 0, id: 'job-1' } };
      }
      const uri = String(meta.uri);
      const instances = [...this.bodies.keys()].map((n) => ({ ID: id(n) }));
      if (uri === `/instances/${id(0)}`) return { meta: { error: 17 } };
      if (uri === `/series/${id(0)}` || uri === `/patients/${id(0)}`) return { meta: { error: 17 } };
      if (uri === `/studies/${id(0)}`) return this.json({ Type: 'Study' });
      if (uri === `/studies/${id(0)}/series`) return this.json([]);
      if (uri === `/studies/${id(0)}/instances`) return this.json(instances);
      if (uri === `/studies/${id(0)}/attachments?full`) return this.json({});
      const match = /^\/instances\/(\d+)-[0-9-]+\/attachments(\?full|\/1\/info)$/.exec(uri);
      if (match) {
        const n = Number(match[1]);
        if (match[2] === '?full') return this.json({ dicom: 1 });
        const bytes = this.bodies.get(n)!;
        return this.json({
          Uuid: uuid(n),
          ContentType: 1,
          CompressedSize: bytes.length,
          CompressedMD5: createHash('md5').update(bytes).digest('hex'),
        });
      }
      return { meta: { error: 17 } };
    },
  });
}

let dir: string;
let sides: StorageSide[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'oos-move-job-'));
  sides = (['object-storage', 'file-system'] as const).map((name) => {
    const raw = new FileSystemStorage({ root: join(dir, name), sync: false });
    return { name, storage: raw, raw };
  });
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function decodeRecord(body: Buffer): { content: Record<string, unknown>; state: Record<string, unknown> } {
  const [content, state] = body.toString().split('\n');
  return { content: JSON.parse(content!), state: JSON.parse(state!) };
}

describe('the MoveStorage job', () => {
  it('is submitted with every level below the resource, then moves it in bounded steps', async () => {
    const orthanc = new FakeOrthanc(70);
    for (const [n, bytes] of orthanc.bodies) {
      await sides[1]!.storage.create(
        { uuid: uuid(n), type: ContentType.Dicom },
        bytes.length,
        Readable.from([bytes]),
      );
    }
    const route = moveStorageRoute();
    const answer = await route.handle(
      {
        method: 'POST',
        uri: '/move-storage',
        groups: [],
        get: new Map(),
        body: Buffer.from(
          JSON.stringify({
            Resources: [id(0)],
            TargetStorage: 'object-storage',
            Asynchronous: true,
            Priority: 5,
          }),
        ),
      },
      orthanc.api,
    );
    expect(answer.status === 200 && JSON.parse(answer.body.toString())).toEqual({
      ID: 'job-1',
      Path: '/jobs/job-1',
    });
    expect(orthanc.submitted).toMatchObject({ type: 'MoveStorage', priority: 5 });
    const submitted = decodeRecord(orthanc.submitted!.record);
    expect(submitted.content).toMatchObject({ Studies: [id(0)], ResourcesTotal: 71, ResourcesDone: 0 });

    const job = moveStorageJob(sides, silentLogger);
    let record: JobRecord = { progress: 0, content: submitted.content, state: submitted.state };
    const progress: number[] = [];
    do {
      record = await job.step(record.state, orthanc.api);
      progress.push(record.progress);
    } while (record.result === 'continue');
    expect(record.result).toBe('success');
    expect(progress.length).toBe(3); // 71 resources, at most 32 per step
    expect(progress[0]).toBeCloseTo(32 / 71);
    expect(record.content).toMatchObject({ AttachmentsMoved: 70, AttachmentsFailed: 0, ResourcesDone: 71 });

    // A reset job (resubmitted) starts over and finds everything already moved.
    record = job.reset(record.state);
    expect(record.progress).toBe(0);
    do record = await job.step(record.state, orthanc.api);
    while (record.result === 'continue');
    expect(record.content).toMatchObject({ AttachmentsMoved: 0, AttachmentsAlreadyOnTarget: 70 });
  });

  it('ends in failure, after trying every attachment, when one is missing everywhere', async () => {
    const orthanc = new FakeOrthanc(3);
    for (const n of [1, 3]) {
      const bytes = orthanc.bodies.get(n)!;
      await sides[1]!.storage.create(
        { uuid: uuid(n), type: ContentType.Dicom },
        bytes.length,
        Readable.from([bytes]),
      );
    }
    const job = moveStorageJob(sides, silentLogger);
    const state = {
      version: 1,
      target: 'object-storage',
      requested: { Studies: [id(0)] },
      queue: [1, 2, 3].map((n) => `instances/${id(n)}`),
      position: 0,
    };
    const record = await job.step(state, orthanc.api);
    expect(record.result).toBe('failure');
    expect(record.content).toMatchObject({ AttachmentsMoved: 2, AttachmentsFailed: 1 });
    expect((record.content.Errors as string[])[0]).toMatch(
      /is neither on the file-system nor on the object-storage/,
    );
  });

  it('refuses a state that is not its own', () => {
    expect(() => moveStorageJob(sides, silentLogger).unserialize({ version: 2 })).toThrow(
      /not a MoveStorage job state/,
    );
  });
});
