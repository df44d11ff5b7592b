// Two Orthancs on one PostgreSQL index and one google store (see scale-out.ts).
import { googleBackend } from './backends/google.js';
import { describeScaleOut } from './scale-out.js';

describeScaleOut('google', googleBackend(), { instances: 60, encrypted: false });
