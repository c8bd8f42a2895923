// The pipeline file's JSON Schema: ajv validates every file against it, and `npm run schema`
// publishes it as pipelines/schema.json for editors (yaml-language-server).

const identifier = { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_-]*$' };
const axisValue = { type: ['string', 'number'] };
const axisValues = { type: 'array', items: axisValue, minItems: 1 };
const axisCondition = {
  type: 'object',
  propertyNames: identifier,
  additionalProperties: { anyOf: [axisValue, axisValues] },
};
const resources = {
  type: 'object',
  additionalProperties: false,
  properties: {
    cpus: { type: 'number', minimum: 0 },
    gpu: { type: 'number', minimum: 0 },
    memory_gb: { type: 'number', minimum: 0 },
  },
};
const inputRef = { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_-]*(\\[[^\\]]*\\])?\\.[A-Za-z_][A-Za-z0-9_-]*$' };
const conditionalRef = {
  type: 'object',
  additionalProperties: false,
  required: ['from'],
  properties: { from: inputRef, when: axisCondition },
};

export const pipelineSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://medpipe.dev/schema/pipeline.json',
  title: 'medpipe pipeline',
  type: 'object',
  additionalProperties: false,
  required: ['name', 'stages'],
  properties: {
    name: identifier,
    description: { type: 'string' },
    extends: { type: 'string', description: 'Pipeline file this one overrides (relative to this file).' },
    plugins: { type: 'array', items: { type: 'string' }, description: 'Modules that export extra stage kinds.' },
    vars: { type: 'object', description: 'Values for ${...} interpolation.' },
    axes: {
      type: 'object',
      propertyNames: identifier,
      additionalProperties: {
        anyOf: [
          axisValues,
          {
            type: 'object',
            description: 'value: label',
            minProperties: 1,
            additionalProperties: { type: 'string' },
          },
        ],
      },
    },
    resources: { ...resources, description: 'Capacity of this machine (overridden by --resources).' },
    remote: { type: 'string', description: 'Shared cache: file:///dir (or a path relative to this file), http(s)://host/prefix, s3://bucket/prefix (overridden by --remote and $MEDPIPE_REMOTE).' },
    stages: {
      type: 'object',
      propertyNames: identifier,
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['uses'],
        properties: {
          uses: { type: 'string', description: 'Stage kind.' },
          description: { type: 'string' },
          matrix: {
            anyOf: [
              { type: 'array', items: identifier },
              { type: 'object', propertyNames: identifier, additionalProperties: { anyOf: [axisValues, { const: '*' }] } },
            ],
          },
          exclude: { type: 'array', items: axisCondition },
          with: { type: 'object' },
          cases: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['when', 'with'],
              properties: { when: axisCondition, with: { type: 'object' } },
            },
          },
          inputs: {
            type: 'object',
            propertyNames: identifier,
            additionalProperties: {
              anyOf: [inputRef, conditionalRef, { type: 'array', items: { anyOf: [inputRef, conditionalRef] }, minItems: 1 }],
            },
          },
          resources,
        },
      },
    },
    table: {
      type: 'object',
      additionalProperties: false,
      required: ['stage', 'value', 'rows', 'columns', 'over'],
      properties: {
        stage: identifier,
        value: { type: 'string', description: 'json output and field of each instance, e.g. metrics.value' },
        rows: { type: 'array', items: identifier, minItems: 1 },
        columns: { type: 'array', items: identifier },
        over: { ...identifier, description: 'axis aggregated within a cell (the seeds)' },
        title: { type: 'string' },
        reference: { description: 'reference values shown beside the table (e.g. the paper)' },
      },
    },
  },
} as const;
