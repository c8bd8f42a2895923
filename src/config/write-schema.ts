// `npm run schema`: publishes the pipeline schema for editors (yaml-language-server).
import { writeFileSync } from 'node:fs';
import { pipelineSchema } from './schema.js';

const target = new URL('../../../pipelines/schema.json', import.meta.url);
writeFileSync(target, JSON.stringify(pipelineSchema, null, 2) + '\n');
process.stdout.write(`wrote ${target.pathname}\n`);
