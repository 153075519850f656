/**
 * The names of a CommonJS module's namespace as this Node makes them, for
 * cjs-archive.ts (`hostAddsModuleExports`): this ES module imports one
 * (cjs-namespace-sample.cts), and cjs-archive.ts requires it (require(esm),
 * synchronous as its parsers are). Node 23 and later
 * add a name 'module.exports' to every CommonJS namespace
 * (lib/internal/modules/esm/translators.js, createCJSModuleWrap).
 */
import * as sample from './cjs-namespace-sample.cjs';

export const names: string[] = Reflect.ownKeys(sample).filter((key): key is string => typeof key === 'string');
/** Whether that name holds module.exports itself, as `default` does. */
export const sameAsDefault: boolean = (sample as Record<string, unknown>)['module.exports'] === (sample as Record<string, unknown>).default;
