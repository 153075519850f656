/**
 * Marks this library puts on error objects, kept in WeakSets (a service can
 * neither add nor remove them). No imports: the lockdown bootstrap uses it.
 *
 * - *Library errors*: SnapshotErrors this library raised into a service. A
 *   service that throws one back out unchanged passes it on as a library
 *   error; anything else a service throws (whatever its name or `code`) is
 *   the service's own error.
 * - *Service stacks*: errors whose `stack` was rendered from service frames
 *   only (see compartments/guest-errors.ts), so it holds no host path and
 *   may be recorded as it is.
 * - *Host stacks*: errors whose `stack` was rendered with no service frame
 *   at all (Node's own formatting: this library's paths, where it is
 *   installed), though raised in a service's turn: the membrane's TypeError
 *   for a method a reference's object lacks. Only their first line may be
 *   recorded.
 */
const libraryErrors = new WeakSet<object>();
const serviceStacks = new WeakSet<object>();
const hostStacks = new WeakSet<object>();

/**
 * Mark `error` as raised by this library into a service, and freeze it (a
 * service must not rewrite the message of an error that will be reported
 * as the library's); returns it.
 */
export const markLibraryError = <T>(error: T): T => {
  if ((typeof error === 'object' || typeof error === 'function') && error !== null) {
    libraryErrors.add(error);
    const details = (error as { details?: unknown }).details;
    if (typeof details === 'object' && details !== null) Object.freeze(details);
    Object.freeze(error);
  }
  return error;
};

export const isLibraryError = (error: object): boolean => libraryErrors.has(error);

/** Rejection reasons this library handed to host callers (a service's failed answer to the host), with what was called. */
const hostAnswers = new WeakMap<object, string>();

/** Mark `reason` as the rejection of a promise a host caller got for a call into a service (`call`: `svc.init()`). */
export const markHostAnswer = (reason: unknown, call = 'a call of a service'): void => {
  if ((typeof reason === 'object' || typeof reason === 'function') && reason !== null) hostAnswers.set(reason, call);
};

/** What was called, for a reason markHostAnswer marked (`svc.init()`); undefined for any other. */
export const hostAnswerCall = (reason: unknown): string | undefined =>
  (typeof reason === 'object' || typeof reason === 'function') && reason !== null ? hostAnswers.get(reason) : undefined;

/**
 * Is `reason` the rejection of a call a host caller made (the build script
 * owns that promise: left unhandled, the script left it so)?
 */
export const isHostAnswer = (reason: unknown): boolean => hostAnswerCall(reason) !== undefined;

export const markServiceStack = (error: object): void => {
  serviceStacks.add(error);
};

export const hasServiceStack = (error: object): boolean => serviceStacks.has(error);

export const markHostStack = (error: object): void => {
  hostStacks.add(error);
};

export const hasHostStack = (error: object): boolean => hostStacks.has(error);

let loadedServices = 0;

/** A membrane was made in this process (a service is loaded here). */
export const noteServiceLoaded = (): void => {
  loadedServices += 1;
};

/** Whether any service was loaded in this process. */
export const anyServiceLoaded = (): boolean => loadedServices > 0;
