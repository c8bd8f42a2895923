#!/usr/bin/env node
// The CLI entry: wires the framework (src/) to the built-in stage kinds (stages/), which
// src/ never imports itself.
import { existsSync } from 'node:fs';

const dist = new URL('../dist/', import.meta.url);
if (!existsSync(new URL('src/cli/main.js', dist))) {
  process.stderr.write('medpipe is not built: run `npm install` (or `npm run build`) in its directory first\n');
  process.exit(2);
}
const { main } = await import(new URL('src/cli/main.js', dist).href);
process.exitCode = await main(process.argv.slice(2), { builtinKinds: [new URL('stages/index.js', dist).href] });
