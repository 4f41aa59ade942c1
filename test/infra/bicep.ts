// Static Bicep checks that run without the Bicep compiler: a tree-sitter parse, a structural lint (syntax
// errors, missing module files, malformed resource types, unused params/vars) and small tree helpers the
// security and settings-drift tests use to read declarations and property values.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type Parser from 'tree-sitter';

type SyntaxNode = Parser.SyntaxNode;

export type { SyntaxNode };

// tree-sitter is a native CommonJS module; loading it through require keeps one instance per worker.
const require = createRequire(import.meta.url);
const TreeSitter = require('tree-sitter') as typeof Parser;
const BicepLanguage = require('tree-sitter-bicep') as Parser.Language;

export const INFRA_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../infra');

let parser: Parser | undefined;
export function parseBicep(source: string): Parser.Tree {
  if (!parser) {
    parser = new TreeSitter();
    parser.setLanguage(BicepLanguage);
  }
  return parser.parse(source);
}

export function listBicepFiles(dir = INFRA_DIR): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listBicepFiles(path));
    else if (entry.name.endsWith('.bicep')) out.push(path);
  }
  return out.sort();
}

export interface LintProblem {
  file: string;
  line: number;
  rule: 'syntax' | 'module-not-found' | 'resource-type' | 'unused-param' | 'unused-var';
  message: string;
}

/** `Namespace.Provider/type[/child...]@yyyy-mm-dd[-preview]` with a real month and day. */
export const RESOURCE_TYPE_PATTERN =
  /^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)+(\/[A-Za-z][A-Za-z0-9]*)+@\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])(-preview)?$/;

export function walk(node: SyntaxNode, visit: (n: SyntaxNode) => void): void {
  visit(node);
  for (const child of node.children) walk(child, visit);
}

/** The literal text of a plain string node (no interpolation), else undefined. */
export function stringValue(node: SyntaxNode | null | undefined): string | undefined {
  if (node?.type !== 'string') return undefined;
  if (node.namedChildren.some((c) => c.type === 'interpolation')) return undefined;
  const content = node.namedChildren.filter((c) => c.type === 'string_content' || c.type === 'escape_sequence');
  return content.map((c) => (c.type === 'escape_sequence' ? c.text.slice(1) : c.text)).join('');
}

/** The name identifier of a param/var/resource/module/output declaration. */
export function declName(decl: SyntaxNode): string {
  const id = decl.namedChildren.find((c) => c.type === 'identifier');
  return id?.text ?? '';
}

/** The object literal that is a declaration's body, through `if (...)` and `[for ...]` wrappers. */
export function declBody(decl: SyntaxNode): SyntaxNode | undefined {
  const find = (n: SyntaxNode): SyntaxNode | undefined => {
    for (const c of n.namedChildren) {
      if (c.type === 'object') return c;
      if (c.type === 'if_statement' || c.type === 'for_statement') return find(c);
    }
    return undefined;
  };
  return find(decl);
}

export function propertyKey(prop: SyntaxNode): string {
  const key = prop.namedChildren[0];
  if (!key) return '';
  return key.type === 'string' ? (stringValue(key) ?? key.text) : key.text;
}

/** The value node of `a.b.c` inside an object literal. */
export function getProperty(obj: SyntaxNode | undefined, path: string): SyntaxNode | undefined {
  let current = obj;
  for (const part of path.split('.')) {
    if (current?.type !== 'object') return undefined;
    const prop = current.namedChildren.find((c) => c.type === 'object_property' && propertyKey(c) === part);
    current = prop?.namedChildren[1];
  }
  return current;
}

export interface ResourceDecl {
  name: string;
  type: string;
  node: SyntaxNode;
  body: SyntaxNode | undefined;
  conditional: boolean;
  existing: boolean;
}

export function resources(root: SyntaxNode): ResourceDecl[] {
  return root.namedChildren
    .filter((n) => n.type === 'resource_declaration')
    .map((node) => ({
      name: declName(node),
      type: stringValue(node.namedChildren.find((c) => c.type === 'string')) ?? '',
      node,
      body: declBody(node),
      conditional: node.namedChildren.some((c) => c.type === 'if_statement'),
      existing: /'\s*existing\s*=/.test(node.text.split('\n')[0] ?? ''),
    }));
}

export function declarations(root: SyntaxNode, type: 'parameter_declaration' | 'variable_declaration'): SyntaxNode[] {
  return root.namedChildren.filter((n) => n.type === type);
}

/** The default value node of `param x T = <default>`. */
export function paramDefault(root: SyntaxNode, name: string): SyntaxNode | undefined {
  const decl = declarations(root, 'parameter_declaration').find((d) => declName(d) === name);
  if (!decl) return undefined;
  const children = decl.namedChildren;
  return children.length >= 3 ? children[children.length - 1] : undefined;
}

/** The value expression of `var x = <value>`. */
export function varValue(root: SyntaxNode, name: string): SyntaxNode | undefined {
  const decl = declarations(root, 'variable_declaration').find((d) => declName(d) === name);
  return decl?.namedChildren[1];
}

/** Identifiers used as references (not declaration names, not object keys). */
function referencedNames(root: SyntaxNode): Map<string, number> {
  const counts = new Map<string, number>();
  walk(root, (n) => {
    if (n.type !== 'identifier') return;
    const parent = n.parent;
    if (!parent) return;
    const isDeclName =
      [
        'parameter_declaration',
        'variable_declaration',
        'resource_declaration',
        'module_declaration',
        'output_declaration',
        'type_declaration',
        'user_defined_function',
      ].includes(parent.type) && parent.namedChildren[0]?.id === n.id;
    const isKey = parent.type === 'object_property' && parent.namedChildren[0]?.id === n.id;
    if (isDeclName || isKey) return;
    counts.set(n.text, (counts.get(n.text) ?? 0) + 1);
  });
  return counts;
}

/** Lint one Bicep source. `file` is used for messages and to resolve relative module paths. */
export function lintBicepSource(source: string, file: string): LintProblem[] {
  const problems: LintProblem[] = [];
  const label = relative(process.cwd(), file) || file;
  const root = parseBicep(source).rootNode;
  const report = (node: SyntaxNode, rule: LintProblem['rule'], message: string) =>
    problems.push({ file: label, line: node.startPosition.row + 1, rule, message });

  walk(root, (n) => {
    if (n.type === 'ERROR') report(n, 'syntax', `syntax error near "${n.text.slice(0, 40).replace(/\s+/g, ' ')}"`);
    else if (n.isMissing) report(n, 'syntax', `missing ${n.type}`);
  });

  for (const mod of root.namedChildren.filter((n) => n.type === 'module_declaration')) {
    const path = stringValue(mod.namedChildren.find((c) => c.type === 'string'));
    if (path === undefined) continue;
    // Registry (br:/br/) and template-spec (ts:/ts/) references cannot be resolved offline.
    if (/^(br|ts)[:/]/.test(path)) continue;
    if (!existsSync(resolve(dirname(file), path))) report(mod, 'module-not-found', `module file not found: ${path}`);
  }

  for (const res of resources(root)) {
    if (!RESOURCE_TYPE_PATTERN.test(res.type)) {
      report(
        res.node,
        'resource-type',
        `malformed resource type "${res.type}" (expected Ns/type@yyyy-mm-dd[-preview])`,
      );
    }
  }

  const used = referencedNames(root);
  for (const decl of declarations(root, 'parameter_declaration')) {
    const name = declName(decl);
    if (!used.has(name)) report(decl, 'unused-param', `parameter "${name}" is declared but never used`);
  }
  for (const decl of declarations(root, 'variable_declaration')) {
    const name = declName(decl);
    if (!used.has(name)) report(decl, 'unused-var', `variable "${name}" is declared but never used`);
  }
  return problems;
}

export function lintBicepFile(file: string): LintProblem[] {
  return lintBicepSource(readFileSync(file, 'utf8'), file);
}

export function formatProblems(problems: LintProblem[]): string {
  return problems.map((p) => `${p.file}:${p.line}: [${p.rule}] ${p.message}`).join('\n');
}

export function readTree(relPath: string): SyntaxNode {
  return parseBicep(readFileSync(join(INFRA_DIR, relPath), 'utf8')).rootNode;
}
