// StrykerJS: mutation testing of the modules where a silent break loses data (docs/mutation.md). `npm run mutation`
// runs every module against the unit-level tests, incrementally (the committed incremental file: only changed code
// and tests run again). MUTATION_GROUP=<name> runs one group below instead, with the tests chosen for it (a
// smaller, faster set: the unit tests of those files), and its own incremental file.
const ALL_MODULES = ['src/http', 'src/sync', 'src/storage', 'src/graph', 'src/partner-center'];
const UNIT_TESTS = [
  'test/http/**/*.test.ts',
  'test/graph/**/*.test.ts',
  'test/partner-center/**/*.test.ts',
  'test/storage/**/*.test.ts',
  'test/sync/**/*.test.ts',
  // Its renewal test waits 6 s of real time for every mutant it covers; export-lease.test.ts tests the renewal.
  '!test/sync/export.test.ts',
];
// Retry, lease, checkpoint, verification and link-policy code: no mutant may survive here.
const GROUPS = {
  'retry-link': {
    mutate: ['src/http/retry.ts', 'src/http/link-policy.ts'],
    tests: [
      'test/http/retry-strategy.test.ts',
      'test/http/link-policy.test.ts',
      'test/http/retry.test.ts',
      'test/sync/messages-routing.test.ts',
    ],
  },
  pipeline: {
    mutate: ['src/http/pipeline.ts'],
    // The Retry-After waits of test/http/retry.test.ts are retry.ts's concern (the retry-link group).
    tests: ['test/http/pipeline-unit.test.ts', 'test/http/pipeline.test.ts'],
  },
  lease: {
    mutate: ['src/sync/export/lease.ts'],
    tests: ['test/sync/export-lease.test.ts'],
  },
  verify: {
    mutate: ['src/sync/export/verify.ts'],
    tests: ['test/sync/verify.test.ts', 'test/sync/ndjson-digest.test.ts', 'test/sync/export-lease.test.ts'],
  },
  stage: {
    mutate: ['src/sync/export/stage.ts'],
    tests: ['test/sync/export-lease.test.ts', 'test/sync/verify.test.ts'],
  },
  claim: {
    mutate: ['src/sync/export/claim.ts'],
    // export-part.test.ts: the path after the claim (v1, v2, re-check, lost lease, failure) against the simulator.
    tests: ['test/sync/export-lease.test.ts', 'test/sync/export-part.test.ts'],
  },
  export: {
    mutate: [
      'src/sync/export/lease.ts',
      'src/sync/export/stage.ts',
      'src/sync/export/verify.ts',
      'src/sync/export/claim.ts',
    ],
    // test/sync/export.test.ts is left out: its renewal test waits 6 s of real time, for every mutant it covers.
    tests: ['test/sync/export-lease.test.ts', 'test/sync/verify.test.ts'],
  },
};
// One group per module: its files against that module's own unit tests (test/<module>), so a module's score can be
// measured by itself in one sitting. A mutant still runs only the tests that reached it in the dry run.
const MODULE_TESTS = {
  http: ['test/http/**/*.test.ts'],
  // export.test.ts is left out (its renewal test waits 6 s of real time); export-lease.test.ts tests the renewal.
  sync: ['test/sync/**/*.test.ts', '!test/sync/export.test.ts'],
  storage: ['test/storage/**/*.test.ts'],
  graph: ['test/graph/**/*.test.ts'],
  'partner-center': ['test/partner-center/**/*.test.ts'],
};
for (const [module, tests] of Object.entries(MODULE_TESTS)) {
  GROUPS[module] = { mutate: [`src/${module}/**/*.ts`], tests };
}
const groupName = process.env.MUTATION_GROUP ?? 'all';
// MUTATION_LABEL names the reports and the incremental file of a run with its own MUTATION_TESTS (a baseline).
const name = process.env.MUTATION_LABEL ?? groupName;
const group =
  groupName === 'all' ? { mutate: ALL_MODULES.map((m) => `${m}/**/*.ts`), tests: UNIT_TESTS } : GROUPS[groupName];
if (!group) throw new Error(`MUTATION_GROUP ${groupName} is not one of all, ${Object.keys(GROUPS).join(', ')}`);
// Read by test/mutation/vitest.config.ts in the test runner processes (started after this file is read).
process.env.MUTATION_TESTS = process.env.MUTATION_TESTS ?? group.tests.join(',');
// One Azurite per test runner process for the whole run (test/mutation/azurite.global.ts), emptied before each
// test file (test/support/azurite.ts), instead of one started per test file per mutant.
process.env.MUTATION_SHARED_AZURITE = '1';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'vitest',
  vitest: { configFile: 'test/mutation/vitest.config.ts', related: false },
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  coverageAnalysis: 'perTest',
  // Static mutants (module-level constants) would each need the whole test set; they are left out.
  ignoreStatic: true,
  mutate: [...group.mutate, '!src/**/index.ts'],
  incremental: true,
  incrementalFile: `test/mutation/incremental-${name}.json`,
  // A 2-core machine shared with others: few workers, and generous timeouts (tests start Azurite and servers).
  concurrency: Number(process.env.MUTATION_CONCURRENCY ?? 2),
  timeoutMS: 20_000,
  timeoutFactor: 3,
  tempDirName: `.stryker-tmp-${name}`,
  ignorePatterns: [
    'dist',
    'coverage',
    'reports',
    'bench/tmp',
    '.azure',
    '.stryker-tmp-*',
    '__blobstorage__',
    '__queuestorage__',
  ],
  reporters: ['clear-text', 'progress-append-only', 'html', 'json'],
  htmlReporter: { fileName: `reports/mutation/${name}.html` },
  jsonReporter: { fileName: `reports/mutation/${name}.json` },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
  thresholds: { high: 90, low: 80, break: null },
};
