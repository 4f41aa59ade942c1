import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Azurite and the simulator are real processes/servers; give them room on a 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts', 'functions/**/*.ts'],
      reporter: ['text-summary', 'text'],
    },
    projects: [
      { extends: true, test: { name: 'app', include: ['test/**/*.test.ts'], exclude: ['test/infra/**'] } },
      {
        extends: true,
        // One real Bicep compile (build, lint, snapshots) before the infra tests read its results.
        test: { name: 'infra', include: ['test/infra/**/*.test.ts'], globalSetup: ['test/infra/compile.global.ts'] },
      },
    ],
  },
});
