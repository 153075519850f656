/**
 * membrane: the Proxy membrane around one service. Wrapping and unwrapping
 * with identity tables both ways, pass-by-copy through wire values, the
 * delivery queue and its turns, and record/replay of every crossing through
 * the Journal (the only part that touches the replay log).
 */
export { Membrane } from './membrane.js';
export type { MembraneOptions } from './membrane.js';
export { Journal } from './journal.js';
export type { JournalOptions } from './journal.js';
export { Turns } from './turns.js';
