// Hybrid mode's moves against core's file-system backend behind the bridge (runs in CI).
import { fileSystemBackend } from './backends/filesystem.js';
import { describeMoveStorage } from './move-storage-suite.js';

describeMoveStorage('filesystem', fileSystemBackend(), { crashTestInstances: 200 });
