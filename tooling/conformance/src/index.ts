export * from './pattern.js';
export * from './master-key.js';
export * from './suite.js';
export * from './memory-round-trip.js';
export * from './list-suite.js';
