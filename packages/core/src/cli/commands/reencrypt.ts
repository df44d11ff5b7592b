import { checkKeyId } from '../../crypto/keyring.js';
import { ConfigurationError } from '../../errors.js';
import type { ListedObject } from '../../storage/contract.js';
import { objectName } from '../../storage/naming.js';
import { readObjectHead, type ObjectHead } from '../bucket/check-object.js';
import { LongRun, rates } from '../bucket/long-run.js';
import { openBucketTarget, type BucketTarget } from '../bucket/open-target.js';
import { attachmentOfName } from '../bucket/parse-name.js';
import { bucketCommandBasics, bucketCommandOptions, forEachConcurrent } from '../bucket/pool.js';
import { listedVersion, REPLACEMENT_SUFFIX, rewriteObject, type Rewrite } from '../bucket/rewrite-object.js';
import { PROGRAM, UsageError, expectPositionals, parseCommandArgs, type Command } from '../command.js';

interface Selection {
  readonly retire: ReadonlySet<number>;
  readonly a1: boolean;
  readonly plaintext: boolean;
}

interface Tally {
  objects: number;
  bytes: number;
}

/** What one listed object is and how it would be rewritten; undefined for names these plugins never write. */
type Plan = { head: ObjectHead; rewrite: Omit<Rewrite, 'client' | 'keyring' | 'writeFormat'> };

export const reencrypt: Command = {
  name: 'reencrypt',
  summary: 'rewrite objects under the current master key: retire a key, leave A1, encrypt plaintext',
  help: `Usage: ${PROGRAM} reencrypt --config FILE|DIR (--retire ID[,ID…] | --format A1 | --plaintext)… [options]

Rewrite, under the current master key (StorageEncryption.MasterKey) and
WriteFormat, every object under RootPath of the bucket that Orthanc's
configuration names and that matches one of:
  --retire ID[,ID…]  its master key id is one of these (repeatable); the keys
                     must still be in PreviousMasterKeys, to read the objects
  --format A1        it is in the A1 format
  --plaintext        it is not encrypted (written with encryption off); it
                     moves to its .enc name
The original is never at risk: the replacement is written beside it
(NAME${REPLACEMENT_SUFFIX}), read back, authenticated and its plaintext's
sha256 compared; only then is it copied over the original, with a write
conditional on the original's listed version (S3 and Azure ETag, GCS
generation), so that an object Orthanc deletes meanwhile is not brought back.
Running against a live Orthanc is safe, except --plaintext: Orthanc reads
either the plain or the .enc names, so run it while Orthanc is stopped.

Ctrl-C stops taking new objects and finishes those under way; running the
command again resumes (each object's header says whether it is done).
Exit status 0 only when every matching object was rewritten and verified.

Options:
  --config FILE|DIR        Orthanc's configuration (as given to Orthanc)
  --retire ID[,ID…]        rewrite the objects under these master key ids
  --format A1              rewrite the A1 objects
  --plaintext              encrypt the objects stored unencrypted
  --concurrency N          objects rewritten at once (default 8)
  --dry-run                only count the objects and bytes per format and key
  --json                   one JSON summary on stdout instead of lines
  -h, --help               show this help
`,
  async run(args) {
    const { values, positionals } = parseCommandArgs({
      args,
      options: {
        ...bucketCommandOptions,
        retire: { type: 'string', multiple: true },
        format: { type: 'string' },
        plaintext: { type: 'boolean' },
      },
      allowPositionals: true,
    });
    expectPositionals(positionals, []);
    const { config, concurrency } = bucketCommandBasics(values);
    const selection = parseSelection(values.retire, values.format, values.plaintext ?? false);
    const target = await openBucketTarget(config);
    const { keyring, settings } = target;
    if (keyring === undefined || settings.encryption === undefined) {
      await target.client.close();
      throw new ConfigurationError(
        `${config}: reencrypt writes under the current master key: StorageEncryption must be enabled`,
      );
    }
    const writeFormat = settings.encryption.writeFormat ?? 'C1';
    if (selection.retire.has(keyring.current.id)) {
      await target.client.close();
      throw new UsageError(
        `--retire ${keyring.current.id}: that is the current master key; make another key current first`,
      );
    }
    if (selection.a1 && writeFormat === 'A1') {
      await target.client.close();
      throw new UsageError('--format A1: WriteFormat is A1, so the objects would be rewritten as A1 again');
    }
    const dryRun = values['dry-run'] ?? false;
    const inventory = new Map<string, Tally & { format: string; keyId?: number }>();
    const matched: Tally = { objects: 0, bytes: 0 };
    const rewritten: Tally = { objects: 0, bytes: 0 };
    const listed: Tally = { objects: 0, bytes: 0 };
    const failures: { object: string; detail: string }[] = [];
    const settled = new Set<string>(); // rewritten, already current, or gone: their replacements may go
    const replacements: string[] = [];
    let gone = 0;
    const run = new LongRun('reencrypt', !values.json);
    let seconds: number;
    try {
      await forEachConcurrent(
        target.client.list(target.prefix),
        concurrency,
        async (object) => {
          if (object.name.endsWith(REPLACEMENT_SUFFIX)) {
            replacements.push(object.name);
            return;
          }
          listed.objects += 1;
          listed.bytes += object.size;
          try {
            const plan = await planOf(target, object);
            if (plan === undefined) return; // not an object these plugins write
            const key =
              plan.head.format === 'plaintext' ? 'plaintext' : `${plan.head.format} key ${plan.head.keyId}`;
            const entry = inventory.get(key) ?? {
              format: plan.head.format,
              keyId: plan.head.keyId,
              objects: 0,
              bytes: 0,
            };
            entry.objects += 1;
            entry.bytes += object.size;
            inventory.set(key, entry);
            if (!matches(plan.head, selection)) {
              settled.add(object.name);
              return;
            }
            matched.objects += 1;
            matched.bytes += object.size;
            if (dryRun) return;
            const outcome = await rewriteObject({
              ...plan.rewrite,
              client: target.client,
              keyring,
              writeFormat,
            });
            settled.add(object.name);
            if (outcome === 'gone') {
              gone += 1;
            } else {
              rewritten.objects += 1;
              rewritten.bytes += object.size;
            }
          } catch (error) {
            if ((error as { name?: string }).name === 'ObjectNotFoundError') {
              settled.add(object.name); // deleted since listed (by Orthanc): nothing to do
              gone += 1;
            } else {
              failures.push({ object: object.name, detail: (error as Error).message });
            }
          } finally {
            run.progress.tick(object.size);
          }
        },
        () => run.interrupted,
      );
    } finally {
      seconds = run.finish();
    }
    // Replacements left by an interrupted run: gone once their original is settled or deleted.
    let replacementsRemoved = 0;
    if (!run.interrupted && !dryRun) {
      for (const name of replacements) {
        const original = name.slice(0, -REPLACEMENT_SUFFIX.length);
        if (failures.some((f) => f.object === original)) continue;
        if (settled.has(original) || (await listedVersion(target.client, original)) === undefined) {
          await target.client.delete(name);
          replacementsRemoved += 1;
        }
      }
    }
    await target.client.close();
    const counted = dryRun ? matched : rewritten;
    const summary = {
      bucket: target.client.description,
      dryRun,
      currentKeyId: keyring.current.id,
      writeFormat,
      objects: listed.objects,
      bytes: listed.bytes,
      inventory: [...inventory.values()].sort((a, b) => b.objects - a.objects),
      matched,
      rewritten,
      goneMeanwhile: gone,
      replacementsRemoved,
      failures,
      interrupted: run.interrupted,
      ...rates(counted.objects, counted.bytes, seconds),
    };
    if (values.json) {
      process.stdout.write(`${JSON.stringify(summary)}\n`);
    } else {
      for (const f of failures) process.stdout.write(`failed: ${f.object}: ${f.detail}\n`);
      for (const entry of summary.inventory) {
        const what = entry.format === 'plaintext' ? 'plaintext' : `${entry.format} under key ${entry.keyId}`;
        process.stdout.write(`${what}: ${entry.objects} objects, ${(entry.bytes / 1e6).toFixed(1)} MB\n`);
      }
      const verb = dryRun ? 'would rewrite' : 'rewrote';
      process.stdout.write(
        `${verb} ${dryRun ? matched.objects : rewritten.objects} of ${matched.objects} matching objects ` +
          `(${(matched.bytes / 1e6).toFixed(1)} MB) in ${seconds.toFixed(1)} s; ${gone} deleted meanwhile, ` +
          `${failures.length} failed${run.interrupted ? ' (interrupted: run it again to finish)' : ''}\n`,
      );
    }
    if (failures.length > 0 || run.interrupted) process.exitCode = 1;
  },
};

function parseSelection(
  retire: string[] | undefined,
  format: string | undefined,
  plaintext: boolean,
): Selection {
  const ids = new Set<number>();
  for (const value of (retire ?? []).flatMap((v) => v.split(','))) {
    const id = Number(value.trim());
    try {
      checkKeyId(id, `--retire ${value}`);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    ids.add(id);
  }
  if (format !== undefined && format !== 'A1') {
    throw new UsageError(`--format ${format}: only A1 objects can be selected by format (--format A1)`);
  }
  if (ids.size === 0 && format === undefined && !plaintext) {
    throw new UsageError('say which objects to rewrite: --retire ID, --format A1 and/or --plaintext');
  }
  return { retire: ids, a1: format === 'A1', plaintext };
}

function matches(head: ObjectHead, selection: Selection): boolean {
  if (head.format === 'plaintext') return selection.plaintext;
  return (head.format === 'A1' && selection.a1) || selection.retire.has(head.keyId!);
}

/**
 * How a listed object would be rewritten. A name without `.enc` (plugin naming) is plaintext and
 * moves to its `.enc` name; otherwise the object's first bytes say its format and key.
 */
async function planOf(target: BucketTarget, object: ListedObject): Promise<Plan | undefined> {
  const { naming, keyring } = target;
  const plainName =
    naming.storageStructure === 'legacy'
      ? undefined
      : attachmentOfName(object.name, { ...naming, encrypted: false });
  if (plainName !== undefined && plainName.type !== undefined) {
    const attachment = { uuid: plainName.uuid, type: plainName.type };
    return {
      head: { format: 'plaintext' },
      rewrite: {
        source: object,
        sourceEncrypted: false,
        attachment,
        target: objectName(attachment, naming),
      },
    };
  }
  const attachment = attachmentOfName(object.name, naming);
  if (attachment === undefined) return undefined;
  const head = await readObjectHead(target.client, object, keyring);
  return {
    head,
    rewrite: {
      source: object,
      sourceEncrypted: head.format !== 'plaintext',
      attachment,
      target: object.name,
    },
  };
}
