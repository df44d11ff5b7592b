export * from './process.js';
export * from './azurite.js';
export * from './gcs-emulator.js';
export * from './radosgw.js';
export * from './tls.js';
export * from './postgresql.js';
export * from './fault-proxy.js';
