// The end-to-end suite against the google plugin (backends/google.ts), from its release tarball.
import { googleBackend } from './backends/google.js';
import { describeEndToEnd } from './suite.js';

describeEndToEnd('google', googleBackend());
