// The architecture rules of docs/architecture.md, checked on every `npm test` (dependency-cruiser reads the real
// imports, TypeScript paths resolved through tsconfig.json).
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'A cycle means two modules own one fact between them: move the shared type or value to its owner.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'functions-are-registrations',
      severity: 'error',
      comment: 'functions/ holds registrations only: each imports the wiring in src/app/ and nothing else of ours.',
      from: { path: '^functions/' },
      to: { path: '^src/', pathNot: '^src/app/' },
    },
    {
      name: 'clients-stay-below-the-jobs',
      severity: 'error',
      comment: 'The clients (http, partner-center, graph, auth, storage) never import the jobs, the wiring or the CLI.',
      from: { path: '^src/(http|partner-center|graph|auth|storage)/' },
      to: { path: '^src/(sync|app|cli|setup)/' },
    },
    {
      name: 'http-stays-below-config',
      severity: 'error',
      comment:
        'The HTTP layer is below the settings (config.ts reads it for redaction): it takes what it needs as plain values.',
      from: { path: '^src/http/' },
      to: { path: '^src/config\\.ts$' },
    },
    {
      name: 'telemetry-stays-below-the-jobs',
      severity: 'error',
      comment: 'Telemetry is used by the jobs and the wiring; it never imports them.',
      from: { path: '^src/telemetry/' },
      to: { path: '^src/(sync|app|cli|setup)/' },
    },
    {
      name: 'dataset-stays-below-the-jobs',
      severity: 'error',
      comment: 'The typed dataset is written by the jobs; it never imports them, the wiring or the CLI.',
      from: { path: '^src/dataset/' },
      to: { path: '^src/(sync|app|cli|setup)/' },
    },
    {
      name: 'jobs-do-not-wire',
      severity: 'error',
      comment: 'The jobs (src/sync) run over an injected deps object: they never import the wiring or the CLI.',
      from: { path: '^src/sync/' },
      to: { path: '^src/(app|cli)/' },
    },
    {
      name: 'app-code-never-imports-tests',
      severity: 'error',
      comment: 'Nothing in src/ or functions/ imports test/, bench/ or scripts/.',
      from: { path: '^(src|functions)/' },
      to: { path: '^(test|bench|scripts)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    exclude: { path: '^(dist|node_modules)/' },
  },
};
