import { describeAttachment } from '../../crypto/c1-format.js';
import type { ListedObject } from '../../storage/contract.js';
import { legacyUnknownObjectName, objectName } from '../../storage/naming.js';
import { checkObject, type CheckedObject } from '../bucket/check-object.js';
import { openBucketTarget } from '../bucket/open-target.js';
import { OrthancIndex, orthancAuthorization, type IndexedAttachment } from '../bucket/orthanc-index.js';
import { attachmentOfName } from '../bucket/parse-name.js';
import { bucketCommandBasics, bucketCommandOptions, forEachConcurrent } from '../bucket/pool.js';
import { LongRun, rates } from '../bucket/long-run.js';
import { PROGRAM, UsageError, expectPositionals, parseCommandArgs, type Command } from '../command.js';

export type ProblemKind = 'corrupt' | 'missing' | 'size-mismatch' | 'orphan' | 'wrong-binding';

export interface Problem {
  readonly kind: ProblemKind;
  readonly object: string;
  readonly instance?: string;
  readonly attachment?: string;
  readonly detail: string;
}

export const verify: Command = {
  name: 'verify',
  summary: 'read and authenticate every object; with --orthanc, compare with Orthanc’s index',
  help: `Usage: ${PROGRAM} verify --config FILE|DIR [options]

Read every object under RootPath of the bucket that Orthanc's configuration
names, and authenticate it: encrypted objects by their GCM tags (C1, A1),
plaintext ones by their size and the provider's checksum. With --orthanc,
also compare with Orthanc's index: attachments whose object is missing,
sizes that disagree, objects no attachment points to (orphans), and C1
objects whose header names another attachment. Exit status 0 only when no
problem was found, 1 otherwise.

Orthanc's credentials come from ORTHANC_USERNAME and ORTHANC_PASSWORD, or
from --orthanc-credentials FILE (one line user:password), never from argv.

Options:
  --config FILE|DIR        Orthanc's configuration (as given to Orthanc)
  --orthanc URL            Orthanc's REST API, e.g. http://127.0.0.1:8042
  --orthanc-credentials F  file holding user:password for --orthanc
  --concurrency N          objects read at once (default 8)
  --delete-orphans         remove the orphans (needs --orthanc)
  --dry-run                with --delete-orphans: only say what would be removed
  --json                   one JSON summary on stdout instead of lines
  -h, --help               show this help
`,
  async run(args) {
    const { values, positionals } = parseCommandArgs({
      args,
      options: {
        ...bucketCommandOptions,
        orthanc: { type: 'string' },
        'orthanc-credentials': { type: 'string' },
        'delete-orphans': { type: 'boolean' },
      },
      allowPositionals: true,
    });
    expectPositionals(positionals, []);
    const { config, concurrency } = bucketCommandBasics(values);
    if (values['delete-orphans'] && values.orthanc === undefined) {
      throw new UsageError('--delete-orphans needs --orthanc: orphans are only known against the index');
    }
    const authorization = await orthancAuthorization(values['orthanc-credentials']);
    const target = await openBucketTarget(config);
    const problems: Problem[] = [];
    const checked = new Map<string, CheckedObject>();
    const listed = new Map<string, ListedObject>();
    let bytes = 0;
    const run = new LongRun('verify', !values.json);
    const progress = run.progress;
    let seconds: number;
    try {
      // The bucket is listed before the index is read: an object Orthanc is writing meanwhile has its
      // index row by the time the index is read, so it is not taken for an orphan.
      await forEachConcurrent(
        target.client.list(target.prefix),
        concurrency,
        async (object) => {
          listed.set(object.name, object);
          try {
            const result = await checkObject(target.client, object, target.keyring);
            checked.set(object.name, result);
            bytes += result.storedSize;
            const key = attachmentOfName(object.name, target.naming);
            if (result.boundTo !== undefined && key !== undefined) {
              const { uuid, type } = result.boundTo;
              if (uuid !== key.uuid || (key.type !== undefined && type !== key.type)) {
                problems.push({
                  kind: 'wrong-binding',
                  object: object.name,
                  detail: `its C1 header names attachment ${describeAttachment(uuid, type)}`,
                });
              }
            }
          } catch (error) {
            if ((error as { name?: string }).name === 'ObjectNotFoundError') {
              listed.delete(object.name); // deleted since listed (e.g. by Orthanc)
              return;
            }
            problems.push({ kind: 'corrupt', object: object.name, detail: (error as Error).message });
          }
          progress.tick(object.size);
        },
        () => run.interrupted,
      );
      if (values.orthanc !== undefined && !run.interrupted) {
        const index = new OrthancIndex(values.orthanc, authorization);
        const referenced = new Set<string>();
        for await (const row of index.attachments()) {
          compareWithIndex(row, target, listed, checked, referenced, problems);
        }
        for (const name of listed.keys()) {
          if (referenced.has(name)) continue;
          // An orphan is one problem, whatever its bytes: no instance loses anything through it.
          const corrupt = problems.findIndex((p) => p.kind === 'corrupt' && p.object === name);
          const unreadable =
            corrupt < 0 ? '' : ` (and it does not authenticate: ${problems[corrupt]!.detail})`;
          if (corrupt >= 0) problems.splice(corrupt, 1);
          problems.push({
            kind: 'orphan',
            object: name,
            detail: `no attachment in Orthanc’s index points to it${unreadable}`,
          });
        }
      }
    } finally {
      seconds = run.finish();
    }
    const interrupted = run.interrupted;
    const removed: string[] = [];
    if (values['delete-orphans'] && !interrupted) {
      for (const problem of problems.filter((p) => p.kind === 'orphan')) {
        if (!values['dry-run']) await target.client.delete(problem.object);
        removed.push(problem.object);
      }
    }
    await target.client.close();
    const summary = {
      bucket: target.client.description,
      objects: listed.size,
      bytes,
      ...rates(listed.size, bytes, seconds),
      interrupted,
      comparedWithIndex: values.orthanc !== undefined && !interrupted,
      problems,
      orphansRemoved: values['dry-run'] ? [] : removed,
      orphansWouldBeRemoved: values['dry-run'] ? removed : [],
    };
    if (values.json) {
      process.stdout.write(`${JSON.stringify(summary)}\n`);
    } else {
      for (const p of problems) {
        const where = p.instance === undefined ? '' : ` (instance ${p.instance}, attachment ${p.attachment})`;
        process.stdout.write(`${p.kind}: ${p.object}${where}: ${p.detail}\n`);
      }
      for (const name of removed) {
        process.stdout.write(`${values['dry-run'] ? 'would remove' : 'removed'} orphan ${name}\n`);
      }
      process.stdout.write(
        `${listed.size} objects, ${(bytes / 1e6).toFixed(1)} MB in ${seconds.toFixed(1)} s: ` +
          `${problems.length} problem(s)${interrupted ? ' (interrupted: not everything was checked)' : ''}\n`,
      );
    }
    if (problems.length > 0 || interrupted) process.exitCode = 1;
  },
};

function compareWithIndex(
  row: IndexedAttachment,
  target: Awaited<ReturnType<typeof openBucketTarget>>,
  listed: Map<string, ListedObject>,
  checked: Map<string, CheckedObject>,
  referenced: Set<string>,
  problems: Problem[],
): void {
  const key = { uuid: row.uuid, type: row.type };
  const names = [objectName(key, target.naming)];
  const legacy = legacyUnknownObjectName(key, target.naming);
  if (target.naming.enableLegacyUnknownFiles && legacy !== undefined) names.push(legacy);
  const found = names.find((name) => listed.has(name));
  const where = { instance: row.instance, attachment: row.attachment };
  if (found === undefined) {
    problems.push({ kind: 'missing', object: names[0]!, ...where, detail: 'the object does not exist' });
    return;
  }
  referenced.add(found);
  const result = checked.get(found);
  if (result !== undefined && result.plaintextSize !== row.size) {
    problems.push({
      kind: 'size-mismatch',
      object: found,
      ...where,
      detail: `it holds ${result.plaintextSize} bytes, Orthanc's index says ${row.size}`,
    });
  }
}
