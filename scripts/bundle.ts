// Builds what azd deploys (azure.yaml `dist: dist/app`): one esbuild bundle of the functions with every
// dependency inside, host.json, the .funcignore, and a package.json of its own that has no dependencies and no build
// script. Flex Consumption's remote build (Oryx: `npm install`, then `npm run build` when there is one) therefore
// installs nothing and compiles nothing: the code that runs in Azure is exactly the bundle tested here, with the
// versions of the lockfile, and no dev or optional dependency (azure-functions-core-tools) ever reaches Azure.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Where `npm run build` writes the deployable app (azure.yaml `dist`). */
export const APP_DIR = 'dist/app';

export interface BundleResult {
  outDir: string;
  files: string[];
}

/** Bundles functions/*.ts into `<outDir>/index.js` and writes the app's package.json, host.json and .funcignore. */
export async function bundleApp(outDir = join(ROOT, APP_DIR)): Promise<BundleResult> {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const functions = readdirSync(join(ROOT, 'functions'))
    .filter((f) => f.endsWith('.ts'))
    .sort();
  // One entry that imports every function module: one copy of @azure/functions (and of every client) per process.
  const entry = functions.map((f) => `import './functions/${f}';`).join('\n');
  await build({
    stdin: { contents: entry, resolveDir: ROOT, sourcefile: 'app-entry.ts', loader: 'ts' },
    outfile: join(outDir, 'index.js'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // Prefer each package's ES module build (jsonc-parser's CommonJS one is UMD with dynamic requires).
    mainFields: ['module', 'main'],
    // The Functions Node worker provides this module to @azure/functions at run time; it is not on npm.
    external: ['@azure/functions-core'],
    // CommonJS dependencies call require(); in an ES module bundle it has to exist.
    banner: {
      js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
    },
    legalComments: 'external',
    logLevel: 'warning',
  });
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  const appPackage = {
    name: pkg.name,
    version: pkg.version,
    description: pkg.description,
    license: pkg.license,
    private: true,
    type: 'module',
    main: 'index.js',
    engines: pkg.engines,
  };
  writeFileSync(join(outDir, 'package.json'), `${JSON.stringify(appPackage, null, 2)}\n`);
  copyFileSync(join(ROOT, 'host.json'), join(outDir, 'host.json'));
  copyFileSync(join(ROOT, '.funcignore'), join(outDir, '.funcignore'));
  return { outDir, files: readdirSync(outDir).sort() };
}

const invokedDirectly = (() => {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
})();

if (invokedDirectly) {
  bundleApp(process.argv[2] ? resolve(process.argv[2]) : undefined).then(
    (result) => process.stderr.write(`bundled ${relative(ROOT, result.outDir)}: ${result.files.join(', ')}\n`),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
