// Mutation runs only: one Azurite per test runner process for the whole run (Stryker re-runs a test file per
// mutant, and a fresh Azurite per re-run would cost more than the tests). The test files' startAzurite() then
// reuses it, emptied first: a file run after another (or after itself, for the previous mutant) finds nothing left.
// Left-overs did harm: a container that already existed failed a file's beforeAll, its tests never ran, and
// Stryker counted its mutants as survived.
import { SHARED_AZURITE_ENV, spawnAzurite } from '../support/azurite.js';

export default async function setup(): Promise<() => Promise<void>> {
  const azurite = await spawnAzurite();
  const { stop, ...endpoints } = azurite;
  process.env[SHARED_AZURITE_ENV] = JSON.stringify(endpoints);
  return async () => {
    delete process.env[SHARED_AZURITE_ENV];
    await stop();
  };
}
