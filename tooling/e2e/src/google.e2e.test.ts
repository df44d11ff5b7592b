import { googleBackend } from './backends/google.js';
import { describeEndToEnd } from './suite.js';

describeEndToEnd('google', googleBackend());
