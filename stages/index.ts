// The built-in stage kinds. A user adds a kind in a module of their own and names it under
// `plugins:` in a pipeline file; nothing in src/ needs to change.
export { default as synthesize } from './synthesize.js';
export { default as preprocess } from './preprocess.js';
export { default as split } from './split.js';
export { default as aggregate } from './aggregate.js';
export { default as init } from './init.js';
export { default as finetune } from './finetune.js';
export { default as evaluate } from './evaluate.js';
export { default as pretrain } from './pretrain.js';
export { default as saliency } from './saliency.js';
export { default as dino } from './dino.js';
