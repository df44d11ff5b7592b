// Shared jest setup: TypeScript ESM through ts-jest, tests under src/**/*.test.ts.
export function jestConfig(overrides = {}) {
  return {
    testEnvironment: 'node',
    extensionsToTreatAsEsm: ['.ts'],
    moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
    transform: {
      '^.+\\.ts$': [
        'ts-jest',
        { useESM: true, tsconfig: 'tsconfig.json', diagnostics: { ignoreCodes: [151002] } },
      ],
    },
    testMatch: ['<rootDir>/src/**/*.test.ts'],
    testTimeout: 120_000,
    ...overrides,
  };
}
