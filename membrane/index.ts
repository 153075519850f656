/**
 * membrane: the Proxy membrane around one service. Wrapping and unwrapping
 * with identity tables both ways, pass-by-copy through wire values, the
 * delivery queue and its turns, and record/replay of every crossing through
 * the Journal (the only part that touches the replay log). The Directory
 * lets the membranes of one process recognise each other's references.
 */
export { Membrane } from './membrane.js';
export type { MembraneOptions, ServiceReference } from './membrane.js';
export { Journal } from './journal.js';
export type { JournalOptions } from './journal.js';
export { Turns } from './turns.js';
export { Directory } from './directory.js';
export type { ExportRef, WireAnswer, WireCall, WireSide } from './directory.js';
export { markLibraryError, isLibraryError, markServiceStack, hasServiceStack, isHostAnswer, hostAnswerCall } from './marks.js';
