// `pipeline engines`: every backend medpipe knows, whether it starts on this machine, and
// why not. Each is started for real (a failed import or a refused adapter is the answer),
// in the order 'auto' tries them.

import { BACKEND_ORDER, initBackend, type BackendChoice, type EngineInfo } from './backend.js';
import type { ListedAdapter } from './webgpu.js';

export interface EngineReport {
  choice: BackendChoice;
  available: boolean;
  /** What it is when available (backend, threads, adapter), or why it is not. */
  detail: string;
  /** Whether 'auto' would take it (a software WebGPU adapter is only used when asked for). */
  auto: boolean;
}

function describeStarted(e: EngineInfo): string {
  if (e.webgpu) {
    const a = e.webgpu.adapter;
    const mib = (n: number | undefined) => (n === undefined ? '?' : `${Math.round(n / 2 ** 20)} MiB`);
    return `${a.software ? 'SOFTWARE adapter' : 'adapter'} ${a.device} (${a.vendor}, ${a.architecture}; ${a.driver}); ` +
      `limits requested: storage binding ${mib(e.webgpu.limits.maxStorageBufferBindingSize)}, buffer ${mib(e.webgpu.limits.maxBufferSize)}` +
      (e.webgpu.syncReads ? '' : '; dataSync unavailable (native addon not built)');
  }
  const native = e.details.native !== undefined ? `, native kernels ${String(e.details.native)}` : '';
  return `tfjs backend '${e.backend}', ${e.threads} thread(s)${native}`;
}

/** Starts each backend in turn; the last one started stays active. */
export async function probeEngines(): Promise<{ engines: EngineReport[]; adapters: ListedAdapter[] }> {
  const engines: EngineReport[] = [];
  let adapters: ListedAdapter[] = [];
  for (const choice of BACKEND_ORDER) {
    try {
      const e = await initBackend({ prefer: choice });
      const software = e.webgpu?.adapter.software === true;
      engines.push({ choice, available: true, detail: describeStarted(e) + (software ? ' — used only when asked for (backend: webgpu / MEDPIPE_BACKEND=webgpu)' : ''), auto: !software });
    } catch (err) {
      const msg = (err as Error).message.replace(/^no tfjs backend could start: [^:]+: /, '');
      engines.push({ choice, available: false, detail: msg, auto: false });
    }
    if (choice === 'webgpu') adapters = await (await import('./webgpu.js')).listAdapters();
  }
  return { engines, adapters };
}

export function enginesTable(r: { engines: EngineReport[]; adapters: ListedAdapter[] }): string {
  const lines: string[] = [];
  const autoPick = r.engines.find((e) => e.available && e.auto)?.choice;
  for (const e of r.engines) {
    const mark = e.choice === autoPick ? ' (auto)' : '';
    lines.push(`${(e.choice + mark).padEnd(16)} ${e.available ? 'available    ' : 'unavailable  '} ${e.detail}`);
  }
  if (r.adapters.length > 0) {
    lines.push('', 'WebGPU adapters (Dawn):');
    r.adapters.forEach((a, i) => lines.push(`  ${i}: ${a.name} [${a.backend}]${a.software ? ' software' : ''}`));
  }
  return lines.join('\n') + '\n';
}
