// vitest globalSetup of the infra project: one Bicep compile for every test file that reads its results.
import { rmSync } from 'node:fs';
import type { TestProject } from 'vitest/node';
import { compileInfra, type InfraBuild } from './compile.js';

declare module 'vitest' {
  export interface ProvidedContext {
    infraBuild: InfraBuild;
  }
}

export default async function setup(project: TestProject) {
  const build = await compileInfra();
  if (build.cli) process.stderr.write(`infra: ${build.cli.version} (${build.cli.source})\n`);
  project.provide('infraBuild', build);
  return () => rmSync(build.dir, { recursive: true, force: true });
}
