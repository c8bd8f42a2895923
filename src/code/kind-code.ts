import type { KindEntry } from '../registry.js';
import { codeDigest, definingModule, type CodeDigest } from './digest.js';

const memo = new Map<string, Promise<CodeDigest>>();

/** The code digest of a registered kind (its defining module's import closure), once per process. */
export function kindCode(entry: KindEntry): Promise<CodeDigest> {
  const id = `${entry.module}\u0000${entry.kind.kind}`;
  let digest = memo.get(id);
  if (!digest) {
    digest = definingModule(entry.module, entry.kind).then(codeDigest);
    memo.set(id, digest);
  }
  return digest;
}

/**
 * Which kinds enter their code digest into the key. Plugins do by default (users iterate on
 * them, often without bumping `version`); built-in kinds are keyed by `version`, and a changed
 * digest is reported, unless the user asks for code as a rerun trigger.
 */
export type CodeTrigger = 'plugins' | 'all';

export function keyedByCode(entry: KindEntry, trigger: CodeTrigger): boolean {
  return trigger === 'all' || !entry.builtin;
}
