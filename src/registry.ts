import { pathToFileURL } from 'node:url';
import type { StageKind } from './contract.js';

export interface KindEntry {
  kind: StageKind;
  /** Module URL the kind was loaded from: a worker process imports the same module to run it. */
  module: string;
  /** One of medpipe's own kinds (keyed by `version`), not a plugin (keyed by its code). */
  builtin?: boolean;
}

export type Registry = Map<string, KindEntry>;

function isStageKind(v: unknown): v is StageKind {
  const k = v as StageKind | null;
  return typeof k === 'object' && k !== null && typeof k.kind === 'string' && typeof k.version === 'number' && typeof k.run === 'function';
}

function kindsOf(mod: Record<string, unknown>): StageKind[] {
  const found: StageKind[] = [];
  for (const value of Object.values(mod)) {
    if (isStageKind(value)) found.push(value);
    else if (Array.isArray(value)) found.push(...value.filter(isStageKind));
  }
  return found;
}

export function moduleUrl(specifier: string): string {
  return /^[a-z]+:/.test(specifier) ? specifier : pathToFileURL(specifier).href;
}

/** Imports modules that export stage kinds (default, named, or arrays of kinds). Later modules may not redefine a kind. */
export async function loadKinds(modules: string[], into: Registry = new Map(), options: { allowEmpty?: boolean; builtin?: boolean } = {}): Promise<Registry> {
  for (const specifier of modules) {
    const url = moduleUrl(specifier);
    let mod: Record<string, unknown>;
    try {
      mod = (await import(url)) as Record<string, unknown>;
    } catch (err) {
      throw new Error(`cannot load stage kinds from ${specifier}: ${(err as Error).message}`, { cause: err });
    }
    const kinds = kindsOf(mod);
    if (kinds.length === 0 && !options.allowEmpty) throw new Error(`${specifier} exports no stage kinds`);
    for (const kind of kinds) {
      const existing = into.get(kind.kind);
      if (existing && existing.kind !== kind) throw new Error(`stage kind "${kind.kind}" from ${specifier} is already defined by ${existing.module}`);
      into.set(kind.kind, { kind, module: url, ...(options.builtin ? { builtin: true } : {}) });
    }
  }
  return into;
}

/** Finds a kind inside a module, for the worker process that runs it. */
export async function importKind(module: string, name: string): Promise<StageKind> {
  const mod = (await import(module)) as Record<string, unknown>;
  const kind = kindsOf(mod).find((k) => k.kind === name);
  if (!kind) throw new Error(`${module} does not export stage kind "${name}"`);
  return kind;
}
