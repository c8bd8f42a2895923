#!/usr/bin/env node
// The CLI entry: wires the framework (src/) to the built-in stage kinds (stages/), which
// src/ never imports itself.
import { existsSync } from 'node:fs';

// `pipeline status … | head`: a reader that stops early closes the pipe. The command ends as it
// would have (a run finishes, nothing is lost), writing nothing more, instead of dying of an
// unhandled EPIPE with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

const dist = new URL('../dist/', import.meta.url);
if (!existsSync(new URL('src/cli/main.js', dist))) {
  process.stderr.write('medpipe is not built: run `npm install` (or `npm run build`) in its directory first\n');
  process.exit(2);
}
const { main } = await import(new URL('src/cli/main.js', dist).href);
process.exitCode = await main(process.argv.slice(2), { builtinKinds: [new URL('stages/index.js', dist).href] });
