// The child of index-probe.ts: reads the index (or rebuilds it, salvaging from the damaged
// copy) where a fault on a damaged page ends this process, not the command that asked.
import { IndexDamagedError } from './index-file.js';
import { liveHolders } from './cache-lock.js';
import { rebuildIndex } from './repair.js';
import { Store } from './store.js';

const [command, dir, keptAt, into] = process.argv.slice(2);
const answer = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);

try {
  if (command === 'probe') {
    const store = new Store(dir!);
    try {
      store.checkReadable();
    } finally {
      await store.close();
    }
    answer({ ok: true });
  } else if (command === 'rebuild') {
    answer(await rebuildIndex(dir!, keptAt!, { salvage: true }, into!));
  } else if (command === 'holders') {
    const store = new Store(dir!);
    try {
      answer({ holders: liveHolders(store) });
    } finally {
      await store.close();
    }
  } else throw new Error(`unknown index-child command ${command}`);
} catch (err) {
  answer(err instanceof IndexDamagedError ? { problem: err.problem } : { error: (err as Error).message });
}
