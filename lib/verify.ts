/**
 * `snapshot verify`: check every file the manifest names (snapshot-files.ts),
 * then replay every service whose files are sound, each in a fresh process
 * (nothing shared with this one), and report ok or what went wrong. A
 * manifest that lists no services is refused by readManifest: there is
 * nothing to verify, and verify never says ok for it.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SnapshotError } from '../replay-log/index.js';
import { readCheckedOptions } from '../replay-log/errors.js';
import { readManifest } from './manifest.js';
import { checkServiceFiles, filesError } from './snapshot-files.js';
import { loadTrustedKeys } from './signing.js';

export interface VerifyOptions {
  /** Trusted public key files: the signature is checked first (SIGNATURE_MISSING, SIGNATURE_INVALID), then by each replay. */
  readonly trust?: readonly string[];
  /** A file holding the seal key, passed on to each replay (default: SNAPSHOT_SEAL_KEY, inherited). */
  readonly sealKeyFile?: string;
}
import { reportProgress } from './progress.js';

export interface VerifyReport {
  readonly service: string;
  readonly ok: boolean;
  readonly ms: number;
  readonly events: number;
  /** The error code and message when not ok. */
  readonly error?: { code: string; message: string };
}

const cli = fileURLToPath(new URL('./cli.cjs', import.meta.url));

const runChild = (args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', d => (stdout += d));
    child.stderr.on('data', d => (stderr += d));
    child.on('error', reject);
    child.on('close', code => resolve({ code, stdout, stderr }));
  });

/**
 * Replay every service in a fresh process. Throws (SIGNATURE_MISSING,
 * SIGNATURE_INVALID, SNAPSHOT_INVALID...) when the snapshot as a whole is
 * refused, USAGE for a `dir` that is not a string or an option of the wrong
 * kind (an empty or non-array `trust`); per-service failures are reports.
 */
export const verifySnapshot = async (dir: string, given: VerifyOptions = {}): Promise<VerifyReport[]> => {
  if (typeof dir !== 'string') throw new SnapshotError('USAGE', `verifySnapshot() takes the snapshot directory (a string), got ${dir === null ? 'null' : typeof dir}.`);
  // Read once and checked: trust given as a Set (no length) skipped the signature check.
  const options = readCheckedOptions(given, { trust: 'strings', sealKeyFile: 'string' }, 'verifySnapshot()');
  if (options.trust !== undefined && options.trust.length === 0) throw new SnapshotError('USAGE', 'verifySnapshot(): trust takes one or more files of trusted keys; an empty list would check nothing.');
  const manifest = readManifest(dir, options.trust?.length ? loadTrustedKeys(options.trust) : undefined);
  const extra = [...(options.trust ?? []).flatMap(file => ['--trust', file]), ...(options.sealKeyFile ? ['--seal-key', options.sealKeyFile] : [])];
  const reports: VerifyReport[] = [];
  for (const name of Object.keys(manifest.services)) {
    const started = performance.now();
    const damaged = filesError(checkServiceFiles(dir, manifest.services[name]));
    if (damaged) {
      const ms = performance.now() - started;
      reports.push({ service: name, ok: false, ms, events: 0, error: { code: damaged.code, message: damaged.message } });
      reportProgress({ phase: 'verified', service: name, events: 0, ms, ok: false, error: { code: damaged.code, message: damaged.message } });
      continue;
    }
    const { code, stdout, stderr } = await runChild(['restore', dir, '--service', name, '--replay-only', '--json', '--quiet', ...extra]);
    const ms = performance.now() - started;
    let parsed: { ok?: boolean; events?: number; error?: { code: string; message: string } } = {};
    try {
      parsed = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as typeof parsed;
    } catch {
      parsed = {};
    }
    const report: VerifyReport =
      code === 0 && parsed.ok
        ? { service: name, ok: true, ms, events: parsed.events ?? 0 }
        : { service: name, ok: false, ms, events: parsed.events ?? 0, error: parsed.error ?? { code: 'UNKNOWN', message: stderr.trim() || `exit code ${String(code)}` } };
    reports.push(report);
    reportProgress({ phase: 'verified', service: name, events: report.events, ms, ok: report.ok, ...(report.error ? { error: report.error } : {}) });
  }
  return reports;
};
