import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileBackend } from './file-backend.js';
import { HttpBackend } from './http-backend.js';
import { ObjectRemote, type RemoteStore } from './remote-store.js';
import { S3Backend } from './s3-backend.js';
import { ConfigError } from '../util/errors.js';

export const REMOTE_ENV = 'MEDPIPE_REMOTE';

/**
 * Which remote a command uses: --remote, then $MEDPIPE_REMOTE, then the pipeline's `remote:`
 * (a bare path there is relative to the pipeline file). "" or "none" turns it off.
 */
export function chooseRemote(flag: string | undefined, fromPipeline: unknown, baseDir: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const picked = flag ?? env[REMOTE_ENV] ?? (typeof fromPipeline === 'string' ? fromPipeline : undefined);
  if (picked === undefined || picked === '' || picked === 'none') return undefined;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(picked)) return picked;
  return resolve(flag !== undefined || env[REMOTE_ENV] !== undefined ? process.cwd() : baseDir, picked);
}

/** file:///dir (or a plain path), http(s)://host/prefix, s3://bucket/prefix. */
export function openRemote(spec: string): RemoteStore {
  if (isAbsolute(spec)) return new ObjectRemote(new FileBackend(spec), spec);
  const url = URL.canParse(spec) ? new URL(spec) : undefined;
  switch (url?.protocol) {
    case 'file:':
      return new ObjectRemote(new FileBackend(fileURLToPath(url!)), spec);
    case 'http:':
    case 'https:':
      return new ObjectRemote(new HttpBackend(url!), spec);
    case 's3:':
      return new ObjectRemote(new S3Backend(url!), spec);
    default:
      // Bad input (a flag, $MEDPIPE_REMOTE or the pipeline's remote:), so exit 2 like one.
      throw new ConfigError(`unsupported remote "${spec}": use file:///path, http(s)://host/prefix or s3://bucket/prefix`);
  }
}
