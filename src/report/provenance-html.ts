// What made the report: the pipeline file and its overrides, the software, and per node its
// key, engine, duration and the command that shows its manifest.
import { anchorOf, escapeXml } from './html.js';
import type { ReportModel } from './model.js';

const seconds = (s: number | undefined) => (s === undefined ? '' : s >= 100 ? `${s.toFixed(0)} s` : `${s.toFixed(1)} s`);

export function provenanceSection(model: ReportModel): string {
  const p = model.pipeline;
  const s = model.software;
  const overrides = p.overrides.length ? `<code class="cmd">${escapeXml(p.overrides.join(' '))}</code>` : 'none (the file as written)';
  const cached = model.nodes.filter((n) => n.cached);
  const total = cached.reduce((a, n) => a + (n.duration_s ?? 0), 0);
  const rows = model.nodes
    .map(
      (n) =>
        `<tr id="${escapeXml(anchorOf(n.id))}"><td><code>${escapeXml(n.id)}</code></td><td>${escapeXml(n.kind)}</td><td>${n.cached ? 'cached' : `not cached: ${escapeXml(n.reason ?? '')}`}</td><td>${escapeXml(n.engine ?? '')}</td><td class="num">${seconds(n.duration_s)}</td><td>${escapeXml(n.started?.slice(0, 19).replace('T', ' ') ?? '')}</td><td><code title="${escapeXml(n.key ?? '')}">${escapeXml(n.key?.slice(0, 12) ?? '')}</code></td><td><code class="cmd">${escapeXml(n.show)}</code></td></tr>`,
    )
    .join('\n');
  return `<dl class="provenance">
<dt>pipeline</dt><dd>${escapeXml(p.name)} — <code>${escapeXml(p.file)}</code></dd>
<dt>overrides</dt><dd>${overrides}</dd>
<dt>medpipe</dt><dd>${escapeXml(s.medpipe)}, commit <code>${escapeXml(s.commit)}</code>; Node.js ${escapeXml(s.node)}</dd>
<dt>cache</dt><dd><code>${escapeXml(s.cache)}</code></dd>
<dt>report written</dt><dd>${escapeXml(s.generated)}</dd>
<dt>nodes</dt><dd>${cached.length} of ${model.nodes.length} cached; their runs took ${seconds(total)} in all</dd>
</dl>
<table class="nodes"><thead><tr><th>node</th><th>kind</th><th>state</th><th>engine</th><th>took</th><th>started (UTC)</th><th>key</th><th>manifest${p.overrides.length ? ' (add the overrides above)' : ''}</th></tr></thead><tbody>
${rows}
</tbody></table>`;
}

export const PROVENANCE_STYLE = `
dl.provenance{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em}dl.provenance dt{font-weight:600}dl.provenance dd{margin:0}dl.provenance code.cmd{white-space:pre-wrap;word-break:break-all}
table.nodes{font-size:12px}table.nodes td.num{text-align:right}table.nodes code.cmd{white-space:pre-wrap;word-break:break-all}
table.nodes tr:target{background:#fff4c2}
`;
