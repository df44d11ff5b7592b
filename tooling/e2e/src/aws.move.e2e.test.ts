// Hybrid mode's moves against S3 (Ceph RGW) with the aws plugin (runs in CI).
import { awsBackend } from './backends/aws.js';
import { describeMoveStorage } from './move-storage-suite.js';

describeMoveStorage('aws', awsBackend());
