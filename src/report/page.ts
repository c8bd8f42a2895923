// The report: one static HTML file, everything embedded (PNGs as data URIs, charts as inline
// SVG), no script, printable.
import { CONFUSION_STYLE, confusionSection } from './confusion-html.js';
import { CURVES_STYLE, curvesSection } from './curves-html.js';
import { FIGURE1_STYLE, figure1Section } from './figure1-html.js';
import { escapeXml } from './html.js';
import type { ReportModel } from './model.js';
import { PROVENANCE_STYLE, provenanceSection } from './provenance-html.js';
import { PAGE_STYLE } from './style.js';
import { tableHtml } from './table-html.js';

export function reportHtml(model: ReportModel): string {
  const finetune = model.curves.filter((c) => c.stage !== 'dino');
  const dino = model.curves.filter((c) => c.stage === 'dino');
  const sections: [string, string, string][] = [
    ['results', 'Results', model.table ? tableHtml(model.table, model.digits) : '<p class="note">The pipeline has no <code>table:</code> section.</p>'],
    ['figure-1', 'Figure 1: where the models look', figure1Section(model.figures, model.minPanel)],
    ['curves', 'Learning curves', curvesSection(finetune, 'No cached training run recorded curves.')],
    ['dino', 'Self-supervised pre-training (DINO)', curvesSection(dino, 'No cached DINO run.')],
    ['confusion', 'Confusion matrices (test set)', confusionSection(model.confusions)],
    ['provenance', 'Provenance', provenanceSection(model)],
  ];
  const section = ([id, title, body]: [string, string, string]) => `<section id="${id}"><h2>${escapeXml(title)}</h2>\n${body}\n</section>`;
  const toc = sections.map(([id, title]) => `<a href="#${id}">${escapeXml(title)}</a>`).join(' · ');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeXml(model.pipeline.name)}: ${escapeXml(model.title)}</title>
<style>${PAGE_STYLE}${FIGURE1_STYLE}${CURVES_STYLE}${CONFUSION_STYLE}${PROVENANCE_STYLE}</style></head><body>
<h1>${escapeXml(model.title)}</h1>
<p class="note">${escapeXml(model.pipeline.name)}${model.description ? ` — ${escapeXml(model.description)}` : ''}; ${model.pipeline.overrides.length} override(s); written ${escapeXml(model.software.generated)}</p>
<nav class="note">${toc}</nav>
<div class="top">${sections.slice(0, 2).map(section).join('\n')}</div>
${sections.slice(2).map(section).join('\n')}
</body></html>
`;
}
