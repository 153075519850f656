/**
 * `snapshot verify <dir> --sources <package dir>`: does the recorded history
 * still hold for the code as it is now? Each service's archive is rebuilt
 * from the current sources (its entry module found at the same path,
 * relative to its package root, under `sourcesDir`) and its recorded log is
 * replayed through it. A service whose code changed in a way its log does
 * not allow fails with the first divergence (REPLAY_DIVERGED: the event, the
 * expected and the actual syscall, the service's stack).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isSnapshotError } from '../replay-log/index.js';
import { checkStringArgument } from '../replay-log/errors.js';
import { Directory } from '../membrane/index.js';
import { archiveService } from '../compartments/index.js';
import { readManifest } from './manifest.js';
import { checkedSealer } from './restore.js';
import { prepareService } from './service.js';
import { InProcessTransport } from './transport.js';
import { reportProgress } from './progress.js';
import type { VerifyReport } from './verify.js';

/**
 * Replay every service of the snapshot in `dir` through archives rebuilt
 * from `sourcesDir`, in this process, one service at a time. Never throws
 * for a service that fails: its report says why (`ok: false`, `error`).
 * Logs that hold sealed secrets are opened with the seal key in
 * `sealKeyFile`, else SNAPSHOT_SEAL_KEY, as restore opens them.
 * Throws what `readManifest` throws for a bad snapshot directory, USAGE
 * for an argument that is not a non-empty string, SEAL_KEY_MISSING or
 * SEAL_KEY_INVALID (checkedSealer) before any service is replayed.
 * Replayed services go live in this process: callers exit when done.
 */
export const verifySources = async (dir: string, sourcesDir: string, options: { readonly sealKeyFile?: string } = {}): Promise<VerifyReport[]> => {
  checkStringArgument(dir, 'verifySources()', 'the snapshot directory');
  checkStringArgument(sourcesDir, 'verifySources()', 'the sources directory');
  const manifest = readManifest(dir);
  const sealer = checkedSealer(manifest, Object.keys(manifest.services), options.sealKeyFile);
  const reports: VerifyReport[] = [];
  for (const service of Object.values(manifest.services)) {
    const started = performance.now();
    let report: VerifyReport;
    try {
      const relative = path.relative(fileURLToPath(service.entryRoot), fileURLToPath(service.entry));
      const entry = path.resolve(sourcesDir, relative);
      if (relative.startsWith('..') || !fs.existsSync(entry)) {
        throw Object.assign(new Error(`its entry module ${relative} is not in ${path.resolve(sourcesDir)} (give the directory of the package that holds it)`), {
          code: 'USAGE',
        });
      }
      const archive = await archiveService(service.name, pathToFileURL(entry).href, Object.keys(service.granted));
      const prepared = await prepareService({ dir, manifest: service, archive, directory: new Directory(), print: () => {}, sealer });
      // Other services are not restored here: their references are bound but never reached while replaying.
      const transport = new InProcessTransport();
      for (const ref of service.references ?? []) prepared.membrane.bindImport(ref.import, transport.connect(ref), ref);
      const restored = await prepared.replay();
      report = { service: service.name, ok: true, ms: performance.now() - started, events: restored.events };
    } catch (error) {
      const code = isSnapshotError(error) ? error.code : ((error as { code?: unknown }).code as string | undefined) ?? 'UNKNOWN';
      report = { service: service.name, ok: false, ms: performance.now() - started, events: 0, error: { code, message: error instanceof Error ? error.message : String(error) } };
    }
    reports.push(report);
    reportProgress({ phase: 'verified', service: service.name, events: report.events, ms: report.ms, ok: report.ok, ...(report.error ? { error: report.error } : {}) });
  }
  return reports;
};
