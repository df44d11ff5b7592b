// The end-to-end suite against core's file-system backend behind the bridge (runs in CI).
import { fileSystemBackend } from './backends/filesystem.js';
import { describeEndToEnd } from './suite.js';

describeEndToEnd('filesystem', fileSystemBackend());
