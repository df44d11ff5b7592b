// `pnpm demo`: an Orthanc that keeps its files through our plugin, encrypted with a generated key.
// Prints the Orthanc Explorer URL and where the objects are; Ctrl-C stops everything.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freePort } from '@orthanc-object-storage/servers';
import { writeMasterKey, type MasterKeyFile } from './backends/backend.js';
import { startDemoBackend, type DemoBackend } from './demo/demo-backend.js';
import { sharedDicomCorpus } from './harness/dicom/corpus.js';
import { OrthancServer } from './harness/orthanc.js';
import { mapConcurrent } from './harness/parallel.js';
import { repoRoot, sharedDicomDir } from './harness/repo.js';

const say = (line: string): void => console.log(line);

async function portIsFree(port: number): Promise<boolean> {
  const server = net.createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A fresh .demo/ folder at the repository root; it ignores itself in git. */
function prepareWorkDir(): string {
  const workDir = path.join(repoRoot(), '.demo');
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
  writeFileSync(path.join(workDir, '.gitignore'), '*\n');
  return workDir;
}

function generateKey(workDir: string): MasterKeyFile {
  return writeMasterKey(workDir, 1);
}

async function main(): Promise<void> {
  const exitWhenReady = process.argv.includes('--exit');
  const workDir = prepareWorkDir();
  const key = generateKey(workDir);
  let backend: DemoBackend | undefined;
  let orthanc: OrthancServer | undefined;
  let stopping = false;
  const shutdown = async (reason: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    say(`\ndemo: ${reason}, stopping Orthanc and the backend...`);
    await orthanc?.stop();
    await backend?.stop();
    say(`demo: stopped. Files are kept in ${workDir} until the next run.`);
  };
  process.once('SIGINT', () => void shutdown('Ctrl-C').then(() => process.exit(0)));
  process.once('SIGTERM', () => void shutdown('SIGTERM').then(() => process.exit(0)));

  try {
    backend = await startDemoBackend(workDir, key, say);
    const httpPort = (await portIsFree(8042)) ? 8042 : await freePort();
    say(`demo: starting Orthanc with ${backend.summary}...`);
    orthanc = await OrthancServer.start({
      workDir: path.join(workDir, 'orthanc'),
      httpPort,
      plugins: [backend.artifactPath],
      configuration: backend.configuration,
    });
    const plugins = await orthanc.client.loadedPlugins();
    if (plugins.length === 0)
      throw new Error(`Orthanc did not load ${backend.artifactPath}; see ${orthanc.logFile}`);

    const corpus = await sharedDicomCorpus();
    if (corpus.length > 0) {
      say(`demo: uploading ${corpus.length} DICOM files from ${sharedDicomDir()}...`);
      const results = await mapConcurrent(corpus, 4, (file) => orthanc!.client.uploadFile(file.file));
      say(`demo: stored ${results.length} instances`);
    } else {
      say(`demo: ${sharedDicomDir()} is absent; upload your own files in Orthanc Explorer`);
    }
    const statistics = await orthanc.client.statistics();
    say('');
    say(`  Orthanc Explorer:  ${orthanc.url}/app/explorer.html`);
    say(`  Plugin:            ${plugins.join(', ')} (${backend.artifactPath})`);
    say(`  Objects:           ${backend.objectsAt}`);
    say(`  Instances:         ${statistics.CountInstances}`);
    say(`  Master key:        ${key.path} (generated for this run, mode 0600)`);
    say(`  Orthanc log:       ${orthanc.logFile}`);
    say(`  Configuration:     ${orthanc.configPath}`);
    say('');
    if (exitWhenReady) {
      await shutdown('--exit given');
      return;
    }
    say('Press Ctrl-C to stop.');
    const status = await orthanc.waitForExit(2 ** 31 - 1);
    if (!stopping) {
      say(
        `demo: Orthanc exited on its own (code ${status.code}, signal ${status.signal}); see ${orthanc.logFile}`,
      );
      await shutdown('Orthanc exited');
      process.exitCode = 1;
    }
  } catch (error) {
    console.error(`demo: ${(error as Error).message}`);
    await shutdown('error');
    process.exitCode = 1;
  }
}

await main();
