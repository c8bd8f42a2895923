import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defineStage } from '../src/contract.js';
import { buildTable, type StdKind, type TableLayout } from '../src/report/table.js';
import { toCsv, toHtml, toMarkdown, type Figure } from '../src/report/render.js';

interface AggregateParams {
  table: TableLayout;
  std: StdKind;
  digits: number;
}

export default defineStage<AggregateParams>({
  kind: 'aggregate',
  // 2: the table is reported for `pipeline run` to print. 3: the HTML shows each value of a
  // cell as text and dots (they were a tooltip).
  version: 3,
  description: "The pipeline's table: one cell per row x column, median ± std over the `over` axis, with reference values",
  params: {
    type: 'object',
    required: ['table'],
    properties: {
      table: { type: 'object', description: 'the pipeline table section: pass "${table}"' },
      std: { enum: ['sample', 'population'], default: 'sample', description: 'ddof=1 (sample) or ddof=0' },
      digits: { type: 'integer', minimum: 1, maximum: 8, default: 3 },
    },
  },
  inputs: {
    metrics: { type: 'json', many: true, description: "every instance of the table's stage" },
    figures: { type: 'file', many: true, optional: true, description: 'PNG figures embedded in the HTML report' },
  },
  outputs: { table: 'json', markdown: 'file', csv: 'file', html: 'file' },
  async run(ctx) {
    const { table: layout, std, digits } = ctx.params;
    const entries = ctx.inputs.jsonList('metrics').map((e) => ({ axes: e.axes, value: e.value }));
    const table = buildTable(layout, entries, std);
    const figures: Figure[] = ctx.inputs.has('figures')
      ? await Promise.all((await ctx.inputs.fileList('figures')).map(async (f) => ({ title: f.node, png: await readFile(f.value) })))
      : [];
    const markdown = toMarkdown(table, digits);
    const files: [string, string, string][] = [
      ['markdown', 'table.md', markdown],
      ['csv', 'table.csv', toCsv(table)],
      ['html', 'report.html', toHtml(table, figures, digits)],
    ];
    for (const [output, name, text] of files) {
      await writeFile(join(ctx.workdir, name), text);
      await ctx.outputs.file(output, name);
    }
    ctx.outputs.json('table', JSON.parse(JSON.stringify(table)));
    ctx.log(`\n${markdown}`);
    ctx.report(markdown);
  },
});
