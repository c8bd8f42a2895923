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
// sbatch options for `pipeline run --executor slurm` (src/run/batch/slurm/settings.ts reads them).
const slurmProperties = {
  partition: { type: 'string', description: 'sbatch --partition' },
  account: { type: 'string', description: 'sbatch --account' },
  qos: { type: 'string', description: 'sbatch --qos' },
  time: {
    anyOf: [
      { type: 'integer', minimum: 1, description: 'minutes' },
      { type: 'string', pattern: '^(\\d+-)?\\d+(:\\d+){0,2}$', description: 'SLURM time: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS' },
    ],
    description: 'sbatch --time (wall-clock limit)',
  },
  gpu_type: { type: 'string', description: 'GPU model in --gres=gpu:<type>:N, where the cluster names them' },
  extra: { type: 'array', items: { type: 'string', pattern: '^-' }, description: 'more sbatch options, verbatim (e.g. --constraint=a100)' },
  setup: { type: 'string', description: 'shell lines run on the compute node before the node (module load, conda activate)' },
};
const slurmStage = {
  type: 'object',
  additionalProperties: false,
  properties: slurmProperties,
  description: "This stage's sbatch options (over the pipeline's slurm: block; extra and setup add up). cpus/gpu/memory_gb come from resources:.",
};
const slurmPipeline = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...slurmProperties,
    cache: { type: 'string', description: "the compute nodes' local cache dir (default $MEDPIPE_EXEC_CACHE, else $TMPDIR/medpipe-cache-<uid>)" },
    logs: { type: 'string', description: 'directory for SLURM job logs, on a file system both the submit host and the compute nodes see (default <cache>/slurm/logs)' },
  },
  description: 'Defaults for every node submitted with --executor slurm.',
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
    slurm: slurmPipeline,
    remote: { type: 'string', description: 'Shared cache: file:///dir (or a path relative to this file), http(s)://host/prefix, s3://bucket/prefix (overridden by --remote and $MEDPIPE_REMOTE).' },
    remote_trust: {
      enum: ['any', 'signed'],
      description: 'signed: use the remote only with a team key ($MEDPIPE_CACHE_KEY) and trust only entries, checkpoints and leases signed with it; any (default): unsigned ones too when no key is set, with a warning (overridden by --remote-trust).',
    },
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
          slurm: slurmStage,
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
        title: { type: 'string', description: 'the table heading; {over} becomes the over axis count ("3 seeds"), {metrics} the metric of each column shown' },
        reference: { description: 'reference values shown beside the table (e.g. the paper)' },
      },
    },
  },
} as const;
