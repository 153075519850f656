/**
 * Progress of builds, restores and verifies, published on a
 * `node:diagnostics_channel` channel so that library code reports without
 * knowing who listens: the CLI prints it (lines on stderr, a live bar on a
 * terminal); a program using the library may subscribe to the same channel.
 *
 * | phase      | when                                          | fields                          |
 * | ---------- | --------------------------------------------- | ------------------------------- |
 * | `archived` | a service's modules are archived (build)      | `bytes` (archive), `ms`         |
 * | `recorded` | its log is sealed at the end of the build     | `events`, `bytes` (log), `ms`   |
 * | `waiting`  | the build waits for a busy service            | `waitingOn` (what it waits for) |
 * | `replayed` | its log is replayed (restore, verify)         | `events`, `ms`                  |
 * | `verified` | a fresh process replayed it (verify)          | `events`, `ms`, `ok`, `error`   |
 *
 * Durations are in milliseconds, sizes in bytes.
 */
import diagnostics from 'node:diagnostics_channel';
import { SnapshotError } from '../replay-log/errors.js';

export type ProgressPhase = 'archived' | 'recorded' | 'waiting' | 'replayed' | 'verified';

export interface ProgressEvent {
  readonly phase: ProgressPhase;
  readonly service: string;
  readonly events?: number;
  readonly bytes?: number;
  readonly ms?: number;
  readonly ok?: boolean;
  readonly error?: { readonly code: string; readonly message: string };
  readonly waitingOn?: readonly string[];
}

/** The channel's name: `diagnostics_channel.subscribe(PROGRESS_CHANNEL, listener)`. */
export const PROGRESS_CHANNEL = 'membrane-snapshot:progress';

const channel = diagnostics.channel(PROGRESS_CHANNEL);

/** Publish one progress event (cheap when nobody listens). */
export const reportProgress = (event: ProgressEvent): void => {
  if (channel.hasSubscribers) channel.publish(event);
};

/** Call `listener` for every progress event until the returned function is called. Throws USAGE for a `listener` that is not a function. */
export const onProgress = (listener: (event: ProgressEvent) => void): (() => void) => {
  if (typeof listener !== 'function') throw new SnapshotError('USAGE', `onProgress() takes a listener function, got ${listener === null ? 'null' : typeof listener}.`);
  const handler = (message: unknown) => listener(message as ProgressEvent);
  diagnostics.subscribe(PROGRESS_CHANNEL, handler);
  return () => diagnostics.unsubscribe(PROGRESS_CHANNEL, handler);
};
