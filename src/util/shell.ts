// How medpipe writes a shell command for a person to copy (the commands its messages suggest)
// or for bash to run (the SLURM batch script): a word that is safe as it stands is left bare, any
// other is single-quoted, so a cache path with a space, `$`, `;` or a quote pastes as one word.

const SAFE = /^[A-Za-z0-9_./=:@,+-]+$/;

/** One shell word: bare when nothing in it is special to sh or bash, else single-quoted. */
export function shellWord(s: string): string {
  return SAFE.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A command line from its words, each quoted as it needs (`pipeline cache repair --cache '/my cache'`). */
export function shellCommand(...words: string[]): string {
  return words.map(shellWord).join(' ');
}
