/**
 * A CommonJS module for cjs-namespace-probe.mts to import: the host Node
 * makes its namespace, and cjs-archive.ts reads which names it has (see there).
 */
export const sample = true;
