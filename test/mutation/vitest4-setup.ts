// Mutation runs only (test/mutation/vitest.config.ts): what StrykerJS 9.5's vitest setup file records after a test
// file, in the form Vitest 4.1 accepts. Its own hook, `afterAll(({ meta }) => ...)`, fails there (Vitest 4.1 passes a
// global afterAll no suite as its first argument: FixtureAccessError), so the per-test coverage of the dry run and
// the hit counts of the mutant runs never reached Stryker. This hook writes the same two values on the file's suite
// (the second argument) first; afterAll hooks run in reverse order, so it runs before the failing one.
import { afterAll, inject } from 'vitest';

type Injected = (key: string) => unknown;
const namespace = (inject as Injected)('globalNamespace') as string | undefined;

if (namespace) {
  const ns = (globalThis as Record<string, { hitCount?: number; mutantCoverage?: unknown } | undefined>)[namespace];
  const mode = (inject as Injected)('mode');
  // biome-ignore lint/correctness/noEmptyPattern: Vitest 4.1 requires the first argument destructured
  afterAll(({}, suite) => {
    const meta = (suite as unknown as { meta: Record<string, unknown> }).meta;
    if (mode === 'mutant') meta.hitCount = ns?.hitCount;
    else meta.mutantCoverage = ns?.mutantCoverage;
  });
}
