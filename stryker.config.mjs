// StrykerJS: mutation testing of the modules where a silent break loses data (docs/mutation.md). `npm run mutation`
// runs every module, incrementally (the committed incremental file: only changed code and tests run again).
// MUTATION_MODULES=src/http,src/sync picks modules; each selection keeps its own incremental file.
const ALL = ['src/http', 'src/sync', 'src/storage', 'src/graph', 'src/partner-center'];
// Retry, lease, checkpoint, verification and link-policy code: no mutant may survive here.
const GROUPS = {
  'critical-http': ['src/http/retry.ts', 'src/http/pipeline.ts', 'src/http/link-policy.ts'],
  'critical-export': [
    'src/sync/export/lease.ts',
    'src/sync/export/stage.ts',
    'src/sync/export/verify.ts',
    'src/sync/export/claim.ts',
  ],
};
const selection = process.env.MUTATION_MODULES;
const targets = selection ? selection.split(',').flatMap((s) => GROUPS[s] ?? [s]) : ALL;
const name = selection ? selection.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '') : 'all';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'vitest',
  // The unit-level tests of these modules (no e2e passes, no Bicep compile); see the file for why.
  vitest: { configFile: 'test/mutation/vitest.config.ts', related: false },
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  coverageAnalysis: 'perTest',
  // Static mutants (module-level constants) would each need the whole test set; they are left out.
  ignoreStatic: true,
  mutate: targets.map((t) => (t.endsWith('.ts') ? t : `${t}/**/*.ts`)).concat(['!src/**/index.ts']),
  incremental: true,
  incrementalFile: `test/mutation/incremental-${name}.json`,
  // A 2-core machine shared with others: few workers, and generous timeouts (tests start Azurite and servers).
  concurrency: Number(process.env.MUTATION_CONCURRENCY ?? 2),
  timeoutMS: 20_000,
  timeoutFactor: 3,
  tempDirName: '.stryker-tmp',
  ignorePatterns: ['dist', 'coverage', 'reports', 'bench/tmp', '.azure', '__blobstorage__', '__queuestorage__'],
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: `reports/mutation/${name}.html` },
  jsonReporter: { fileName: `reports/mutation/${name}.json` },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
  thresholds: { high: 90, low: 80, break: null },
};
