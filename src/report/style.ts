// The pages' shared CSS: readable on a screen, and the same page printed (no scripts, no fonts
// fetched). The first row's two sections size to their content: a Results table wider than
// the row's rest pushes Figure 1 onto the next line, and one wider than the page scrolls in its
// own box, so neither ever draws under the other. The footnote takes the table's width instead
// of widening the section to its own line's length.
export const PAGE_STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:2em;color:#222;max-width:1500px}
h1{font-size:1.5em;margin:0 0 .3em}h2{margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}h3{margin:1.2em 0 .4em}
table{border-collapse:collapse;margin:.6em 0}th,td{border:1px solid #bbb;padding:.35em .6em;text-align:left;vertical-align:top}
thead th{background:#eee}td{font-variant-numeric:tabular-nums}
table.results td .value{font-weight:600;white-space:nowrap}
table.results td .seeds{font-size:12px;color:#444;white-space:nowrap}
svg.dots{display:block;margin-top:2px}
.note{color:#555;font-size:12px}
code{font:12px ui-monospace,"DejaVu Sans Mono",monospace;background:#f4f4f4;padding:0 .25em}
.top{display:flex;flex-wrap:wrap;gap:0 3em;align-items:flex-start}.top>section{flex:0 1 auto;min-width:0}.top>section#results{flex:0 1 auto;max-width:100%;overflow-x:auto}.top>section#results>p.note{width:0;min-width:100%}.top>section#figure-1{flex:1 1 24em;overflow-x:auto}
@media print{.chart-row svg{width:32%;height:auto}body{margin:0;max-width:none}h2{break-after:avoid}figure,.chart-cell,.confusion,table.fig1{break-inside:avoid}}
`;
