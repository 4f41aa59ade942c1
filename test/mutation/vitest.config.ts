// The test set StrykerJS runs against each mutant (stryker.config.mjs): the unit-level tests of the mutated modules,
// on real parts (loopback servers, the simulator, Azurite) but without the slow end-to-end passes and without the
// infra project (a real Bicep compile). Coverage analysis is per test, so a mutant runs only the tests that reach it.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Set by stryker.config.mjs for the module group being mutated; by hand: MUTATION_TESTS=a.test.ts,b.test.ts.
    include: (process.env.MUTATION_TESTS ?? 'test/http/**/*.test.ts').split(','),
    // One Azurite for the run, for the groups whose tests never list what the account holds (stryker.config.mjs).
    globalSetup: process.env.MUTATION_SHARED_AZURITE === '1' ? ['test/mutation/azurite.global.ts'] : [],
  },
});
