import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { init, parse } from 'es-module-lexer';
import { digestJSON, sha256 } from '../util/hash.js';

/** The code a stage kind runs: its module and every project file it imports, transitively. */
export interface CodeDigest {
  /** sha256 over the sorted (path, content digest) pairs; paths relative to the entry's folder. */
  digest: string;
  /** Those paths, sorted: what a changed digest can be traced to. */
  files: string[];
}

function isLocal(specifier: string): boolean {
  return specifier.startsWith('./') || specifier.startsWith('../') || specifier.startsWith('/') || specifier.startsWith('file:');
}

function resolveLocal(from: string, specifier: string): string {
  return specifier.startsWith('file:') ? fileURLToPath(specifier) : resolve(dirname(from), specifier);
}

/** Literal local specifiers of a module (static imports, re-exports, dynamic imports of a string), subpath imports (`#…`) included. */
async function localImports(file: string, source: string): Promise<string[]> {
  await init;
  let imports: ReturnType<typeof parse>[0];
  try {
    [imports] = parse(source, file);
  } catch (err) {
    throw new Error(`cannot read the imports of ${file}: ${(err as Error).message}`);
  }
  const found: string[] = [];
  for (const { n } of imports) {
    if (n === undefined) continue;
    if (isLocal(n)) found.push(resolveLocal(file, n));
    else if (n.startsWith('#')) found.push(...(await subpathImport(file, n)));
  }
  return found;
}

/**
 * A subpath import (`#lib/x.js`, mapped by the `imports` of the nearest package.json) names a
 * file of the project itself, as a relative path does: resolved as Node resolves it. One that
 * maps into node_modules is a package's, left out like a bare specifier; one that does not
 * resolve cannot be imported either, so it names no code.
 */
async function subpathImport(file: string, specifier: string): Promise<string[]> {
  // Loaded only for a project that uses them: every run computes plugin digests.
  const { resolve: resolveModule } = await import('import-meta-resolve');
  let url: string;
  try {
    url = resolveModule(specifier, pathToFileURL(file).href);
  } catch {
    return [];
  }
  if (!url.startsWith('file:')) return [];
  const path = fileURLToPath(url);
  // Judged from the importer's package, not the whole path: a plugin installed in node_modules
  // maps `#lib/*` to its own files, which are its code as much as its relative imports are.
  const inside = relative(packageScope(file), path);
  return inside.startsWith('..') || inside.split(sep).includes('node_modules') ? [] : [path];
}

/** The folder of the package.json nearest above `file`, whose "imports" Node reads (its package scope). */
function packageScope(file: string): string {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) || dirname(dir) === dir) return dir;
  }
}

/**
 * Digest of a module's local import closure. Packages (bare specifiers) are left out: their
 * versions are recorded in provenance and pinned by the lockfile. Paths enter relative to the
 * entry module, so two clones in different folders agree.
 */
export async function codeDigest(entryUrl: string): Promise<CodeDigest> {
  const entry = fileURLToPath(entryUrl);
  const base = dirname(entry);
  const seen = new Map<string, string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    let source: string;
    try {
      source = await readFile(file, 'utf8');
    } catch (err) {
      throw new Error(`cannot read ${file}, imported by the code of a stage kind: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    seen.set(file, sha256(source));
    for (const dep of await localImports(file, source)) if (!seen.has(dep)) queue.push(dep);
  }
  const pairs = [...seen].map(([file, digest]) => [relative(base, file).split(sep).join('/'), digest] as [string, string]).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return { digest: digestJSON(pairs), files: pairs.map(([p]) => p) };
}

function exportsValue(mod: Record<string, unknown>, value: unknown): boolean {
  return Object.values(mod).some((v) => v === value || (Array.isArray(v) && v.includes(value)));
}

/**
 * The module that defines `value` among `entryUrl` and the modules it re-exports: for an index
 * module (`export * from './finetune.js'`) that is the stage's own file, so a kind's code digest
 * covers what that kind imports, not every kind of the index.
 */
export async function definingModule(entryUrl: string, value: unknown): Promise<string> {
  let current = entryUrl;
  for (;;) {
    const file = fileURLToPath(current);
    const children = await localImports(file, await readFile(file, 'utf8'));
    let next: string | undefined;
    for (const child of children) {
      const url = pathToFileURL(child).href;
      const mod = (await import(url).catch(() => undefined)) as Record<string, unknown> | undefined;
      if (mod && exportsValue(mod, value)) {
        next = url;
        break;
      }
    }
    if (!next || next === current) return current;
    current = next;
  }
}
