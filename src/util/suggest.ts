// "Did you mean …?" for a mistyped name. commander already says this for an unknown option
// (`--forc` → "(Did you mean --force?)") but does not export its helper, so this is the same
// rule (Damerau-Levenshtein distance at most 3 and similarity above 0.4; the closest win, all
// of them on a tie), so a mistyped field or node reads like a mistyped option.
const MAX_DISTANCE = 3;

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > MAX_DISTANCE) return Math.max(a.length, b.length);
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) d[i] = [i];
  for (let j = 0; j <= b.length; j++) d[0]![j] = j;
  for (let j = 1; j <= b.length; j++) {
    for (let i = 1; i <= a.length; i++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** The candidates closest to word, sorted; none where nothing is close. */
export function similarNames(word: string, candidates: Iterable<string>): string[] {
  let similar: string[] = [];
  let bestDistance = MAX_DISTANCE;
  for (const candidate of new Set(candidates)) {
    if (candidate.length <= 1) continue;
    const distance = editDistance(word, candidate);
    const length = Math.max(word.length, candidate.length);
    if ((length - distance) / length <= 0.4) continue;
    if (distance < bestDistance) {
      bestDistance = distance;
      similar = [candidate];
    } else if (distance === bestDistance) similar.push(candidate);
  }
  return similar.sort((a, b) => a.localeCompare(b));
}

/** " (Did you mean x?)" or "", to append to a message, as commander writes it. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const similar = similarNames(word, candidates);
  return similar.length === 0 ? '' : ` (Did you mean ${similar.length === 1 ? similar[0] : `one of ${similar.join(', ')}`}?)`;
}
