// Reads what the Bicep compile of this run produced (test/infra/compile.global.ts): the ARM template and the
// snapshots of predicted resources. Every security and settings assertion reads these, not the Bicep source.
import { readFileSync } from 'node:fs';
import { inject } from 'vitest';
import type { InfraBuild, SnapshotName } from './compile.js';

export interface ArmResource {
  id: string;
  type: string;
  name: string;
  apiVersion: string;
  location?: string;
  kind?: string;
  sku?: Record<string, unknown>;
  identity?: Record<string, unknown>;
  tags?: Record<string, string>;
  // biome-ignore lint/suspicious/noExplicitAny: ARM properties are whatever each resource type defines
  properties?: any;
}

export interface Snapshot {
  predictedResources: ArmResource[];
  diagnostics: unknown[];
  outputs?: Record<string, unknown>;
}

export interface ArmParameter {
  type: string;
  defaultValue?: unknown;
  allowedValues?: unknown[];
  minValue?: number;
  maxValue?: number;
  metadata?: { description?: string };
}

export interface ArmTemplate {
  $schema: string;
  parameters: Record<string, ArmParameter>;
  outputs: Record<string, { type: string; value: unknown }>;
  resources: unknown;
}

export function infraBuild(): InfraBuild {
  return inject('infraBuild');
}

function usable(build: InfraBuild): void {
  if (build.error) throw new Error(build.error);
  if (build.build?.status !== 0) throw new Error(`bicep build failed:\n${build.build?.stderr}`);
}

let template: ArmTemplate | undefined;
export function armTemplate(): ArmTemplate {
  const build = infraBuild();
  usable(build);
  template ??= JSON.parse(readFileSync(build.templatePath, 'utf8')) as ArmTemplate;
  return template;
}

const snapshots = new Map<SnapshotName, Snapshot>();
export function snapshot(name: SnapshotName = 'defaults'): Snapshot {
  const build = infraBuild();
  usable(build);
  const entry = build.snapshots[name];
  if (entry.run?.status !== 0) throw new Error(`bicep snapshot (${name}) failed:\n${entry.run?.stderr}`);
  let s = snapshots.get(name);
  if (!s) {
    s = JSON.parse(readFileSync(entry.path, 'utf8')) as Snapshot;
    snapshots.set(name, s);
  }
  return s;
}

/** Predicted resources of one type (exact type, case-insensitive as ARM compares them). */
export function resourcesOf(type: string, name: SnapshotName = 'defaults'): ArmResource[] {
  return snapshot(name).predictedResources.filter((r) => r.type.toLowerCase() === type.toLowerCase());
}

/** The single predicted resource of a type; throws when there is none or more than one. */
export function oneOf(type: string, name: SnapshotName = 'defaults'): ArmResource {
  const found = resourcesOf(type, name);
  if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`);
  return found[0]!;
}

/** The last segment of a role definition id. */
export const roleGuid = (roleDefinitionId: string) => roleDefinitionId.split('/').at(-1) ?? '';
