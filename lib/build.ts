/** `snapshot build`: run a build script, then seal every service it imported. */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { SnapshotError, isSnapshotError } from '../replay-log/index.js';
import { beginSession, endSession } from './session.js';
import type { Manifest } from './manifest.js';
import { appNameOf } from './runtime.js';
import { loadSigningKey } from './signing.js';
import { loadSealer } from './seal-key.js';

export interface BuildOptions {
  /** The build script (.js, .mjs, .ts, .mts). */
  readonly script: string;
  /** The snapshot directory to write. Default: `snapshot`. */
  readonly out?: string;
  /** How long to wait for services to become quiescent after the script ends. */
  readonly timeoutMs?: number;
  readonly print?: (text: string) => void;
  /** An ed25519 private key (PEM file) to sign the manifest with (manifest.sig). */
  readonly sign?: string;
  /** A file holding the seal key (32 bytes, base64). Default: the SNAPSHOT_SEAL_KEY environment variable. */
  readonly sealKeyFile?: string;
}

export interface BuildResult {
  readonly dir: string;
  readonly manifest: Manifest;
  readonly ms: number;
}

let tsxRegistered = false;

/** TypeScript build scripts run through tsx's loader. */
const ensureTypeScript = async (script: string): Promise<void> => {
  if (tsxRegistered || !/\.[cm]?ts$/.test(script)) return;
  const { register } = await import('tsx/esm/api');
  register();
  tsxRegistered = true;
};

export const buildSnapshot = async (options: BuildOptions): Promise<BuildResult> => {
  const started = performance.now();
  const script = path.resolve(options.script);
  // Keys first: a bad key fails before anything is run or written.
  const signer = options.sign === undefined ? undefined : loadSigningKey(options.sign);
  const sealer = loadSealer(options.sealKeyFile);
  const session = beginSession(options.out ?? 'snapshot', options.print, { signer, sealer });
  try {
    try {
      await ensureTypeScript(script);
      await import(pathToFileURL(script).href);
    } catch (error) {
      const progress = session.abandon();
      const reason = isSnapshotError(error) ? `${error.code}: ${error.message}` : error instanceof Error ? error.stack ?? error.message : String(error);
      throw new SnapshotError('BUILD_FAILED', `the build script ${script} failed; no snapshot was sealed.\n${reason}${progress.length ? `\nRecorded so far:\n${progress.map(p => `  ${p}`).join('\n')}` : ''}`, {
        cause: error,
        details: { script, progress },
      });
    }
    let manifest: Manifest;
    try {
      manifest = await session.seal(options.timeoutMs ?? 30_000, appNameOf(script));
    } catch (error) {
      session.abandon();
      throw error;
    }
    return { dir: session.outDir, manifest, ms: performance.now() - started };
  } finally {
    endSession(session);
  }
};
