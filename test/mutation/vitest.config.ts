// The test set StrykerJS runs against each mutant (stryker.config.mjs): the unit-level tests of the mutated modules,
// on real parts (loopback servers, the simulator, Azurite) but without the slow end-to-end passes and without the
// infra project (a real Bicep compile). Coverage analysis is per test, so a mutant runs only the tests that reach it.
import { configDefaults, defineConfig } from 'vitest/config';

// Set by stryker.config.mjs for the module group being mutated; by hand: MUTATION_TESTS=a.test.ts,b.test.ts
// (a pattern that starts with ! leaves those files out).
const patterns = (process.env.MUTATION_TESTS ?? 'test/http/**/*.test.ts').split(',');

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    include: patterns.filter((p) => !p.startsWith('!')),
    exclude: [...configDefaults.exclude, ...patterns.filter((p) => p.startsWith('!')).map((p) => p.slice(1))],
    // One Azurite for the run (stryker.config.mjs), handed to each test file empty (test/support/azurite.ts).
    globalSetup: process.env.MUTATION_SHARED_AZURITE === '1' ? ['test/mutation/azurite.global.ts'] : [],
    // After StrykerJS's own setup file (it puts its file first): see the file.
    setupFiles: ['test/mutation/vitest4-setup.ts'],
  },
});
