/**
 * membrane-snapshot: record services at build time inside SES compartments,
 * replay them on another host.
 *
 * - `importService(specifier, options)` loads a service in a build script.
 * - `buildSnapshot` / `restoreSnapshot` are what `snapshot build` and
 *   `snapshot restore` do.
 */
import '../compartments/lockdown.js';

export { importService } from './import-service.js';
export type { ImportServiceOptions } from './import-service.js';
export type { Remote, RemoteFunction, RemoteObject, Returned, UntypedService } from './remote.js';
export { buildSnapshot } from './build.js';
export type { BuildOptions, BuildResult } from './build.js';
export { restoreSnapshot, callService } from './restore.js';
export type { RestoreSnapshotOptions, RestoredSnapshot } from './restore.js';
export { verifySnapshot } from './verify.js';
export type { VerifyReport, VerifyOptions } from './verify.js';
export { verifySources } from './verify-sources.js';
export { onProgress, PROGRESS_CHANNEL } from './progress.js';
export type { ProgressEvent, ProgressPhase } from './progress.js';
export { inspectPath } from './inspect.js';
export { readManifest } from './manifest.js';
export type { Manifest, ServiceManifest } from './manifest.js';
export type { RestoredService, ServiceExports } from './service.js';
export { SnapshotError, isSnapshotError, secret } from '../replay-log/index.js';
export type { Secret } from '../replay-log/index.js';
export type { ReachPolicy, SecretsOptions, SecretsPolicy } from '../compartments/index.js';
export { loadSigningKey, loadTrustedKeys, publicKeyId } from './signing.js';
export type { SignatureRecord, SigningKey, TrustedKey } from './signing.js';
export type { SnapshotErrorCode } from '../replay-log/index.js';
export { libraryVersion } from './version.js';
export { runtime } from './runtime.js';
export type { RuntimeDeclaration } from '../compartments/index.js';
export type { ServiceRuntime } from './manifest.js';
