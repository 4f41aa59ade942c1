// Mutation runs only: one Azurite for the whole run (Stryker re-runs a test file per mutant, and a fresh Azurite
// per re-run would cost more than the tests). The test files' startAzurite() then reuses it; every test still
// works in its own container and ledger table.
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
