/**
 * compartments: the lockdown bootstrap, loading a service from its location
 * or its archive, and the endowed environment (deterministic builtins,
 * console, timers, fetch, env, fs, Node builtin modules).
 */
export { archiveService, archiveServiceWithRoots, loadService, packageRootOf, explainLoadError } from './load.js';
export type { LoadOptions, LoadedService } from './load.js';
export { makeEndowments, hardenHost, exitModuleNames, builtinModuleNames, grantShape } from './endowments.js';
export type { Endowments, EndowmentOptions, Grant, GrantShape } from './endowments.js';
export { validateDeclaration, MAX_REPLICAS } from './runtime.js';
export type { RuntimeDeclaration, RequestRecord, ResponseRecord, ResponseHead, HttpIo } from './runtime.js';
export { reachPolicy, makeReach, realPath } from './reach.js';
export type { ReachPolicy, Reach } from './reach.js';
export { secretsPolicy, makeSecretMatcher, DEFAULT_SECRET_ENV, DEFAULT_SECRET_HEADERS } from './secrets.js';
export type { SecretsPolicy, SecretsOptions, SecretMatcher } from './secrets.js';
export type { HttpRequestRecord, HttpOutcome } from './http.js';
