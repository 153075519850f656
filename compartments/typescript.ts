/**
 * TypeScript services: `.ts`, `.mts` and `.cts` modules are parsed by
 * stripping their types (amaro, the type stripper Node itself uses), which
 * replaces type syntax with blanks. Lines and columns stay where they were,
 * so stack traces and divergence reports point at the TypeScript source;
 * the archive then holds the compiled JavaScript module records, and restore
 * needs no TypeScript at all.
 *
 * Type-only syntax is supported; syntax that needs code generation (enum,
 * namespace, parameter properties) falls back to amaro's transform mode,
 * whose output may shift lines.
 */
import { createRequire } from 'node:module';
import { defaultParserForLanguage } from '@endo/compartment-mapper/archive-parsers.js';
import { SnapshotError } from '../replay-log/index.js';
import { evade } from './evasion.js';

type Parser = (typeof defaultParserForLanguage)['mjs'];
type ParseArgs = Parameters<Parser['parse']>;

interface Amaro {
  transformSync(code: string, options: { mode: 'strip-only' | 'transform'; sourceMap?: boolean; filename?: string }): { code: string };
}

let amaro: Amaro | undefined;
const loadAmaro = (): Amaro => {
  amaro ??= createRequire(import.meta.url)('amaro') as Amaro;
  return amaro;
};

const decoder = new TextDecoder();
const encoder = new TextEncoder();

export const stripTypes = (source: string, filename: string): string => {
  const { transformSync } = loadAmaro();
  try {
    return transformSync(source, { mode: 'strip-only', filename }).code;
  } catch (stripError) {
    try {
      return transformSync(source, { mode: 'transform', filename }).code;
    } catch {
      throw new SnapshotError('SERVICE_LOAD_FAILED', `${filename}: TypeScript does not parse: ${stripError instanceof Error ? stripError.message : String(stripError)}`, {
        cause: stripError,
        details: { file: filename },
      });
    }
  }
};

const typescriptParser = (base: Parser): Parser => ({
  ...base,
  parse: (...args: ParseArgs) => {
    const [bytes, specifier, location, ...rest] = args;
    const javascript = encoder.encode(evade(stripTypes(decoder.decode(bytes), location), base === defaultParserForLanguage.cjs ? 'script' : 'module', location));
    return base.parse(javascript, specifier, location, ...rest);
  },
});

/** Parsers and extension mappings for compartment-mapper's archive options. */
export const typescriptOptions = () => ({
  parserForLanguage: {
    'ts-mjs': typescriptParser(defaultParserForLanguage.mjs),
    'ts-cjs': typescriptParser(defaultParserForLanguage.cjs),
  },
  languageForExtension: { mts: 'ts-mjs', cts: 'ts-cjs' },
  moduleLanguageForExtension: { ts: 'ts-mjs' },
  commonjsLanguageForExtension: { ts: 'ts-cjs' },
  workspaceModuleLanguageForExtension: { ts: 'ts-mjs' },
  workspaceCommonjsLanguageForExtension: { ts: 'ts-cjs' },
});
