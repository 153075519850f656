/**
 * TypeScript services: `.ts`, `.mts` and `.cts` modules are parsed by
 * stripping their types with swc's WebAssembly type stripper
 * (`@swc/wasm-typescript`, the engine Node's own `amaro` wraps, with no
 * native code and no Node version requirement), which replaces type syntax
 * with blanks. Lines and columns stay where they were, so stack traces and
 * divergence reports point at the TypeScript source; the archive then holds
 * the compiled JavaScript module records, and restore needs no TypeScript.
 *
 * Type-only syntax is supported; syntax that needs code generation (enum,
 * namespace, parameter properties) falls back to swc's transform mode,
 * whose output may shift lines.
 */
import { createRequire } from 'node:module';
import { defaultParserForLanguage } from '@endo/compartment-mapper/archive-parsers.js';
import { SnapshotError } from '../replay-log/index.js';
import { evade } from './evasion.js';

type Parser = (typeof defaultParserForLanguage)['mjs'];
type ParseArgs = Parameters<Parser['parse']>;

interface Stripper {
  transformSync(code: string, options: { mode: 'strip-only' | 'transform'; filename?: string }): { code: string };
}

let stripper: Stripper | undefined;
/** Loaded on first use: builds without TypeScript services never pay for the WebAssembly module. */
const loadStripper = (): Stripper => {
  stripper ??= createRequire(import.meta.url)('@swc/wasm-typescript') as Stripper;
  return stripper;
};

/** What swc throws for a syntax error: a plain object, not an Error. Lines 1-based, columns 0-based. */
interface SwcSyntaxError {
  readonly message: string;
  readonly startLine?: number;
  readonly startColumn?: number;
  readonly snippet?: string;
}

const isSwcError = (value: unknown): value is SwcSyntaxError =>
  typeof value === 'object' && value !== null && typeof (value as { message?: unknown }).message === 'string';

/** A module path a user recognises: `file:///app/svc.ts` becomes `/app/svc.ts`. */
const displayPath = (location: string): string => (location.startsWith('file://') ? decodeURIComponent(new URL(location).pathname) : location);

/**
 * TypeScript source to JavaScript with the same lines and columns.
 * `filename` is the module's location (a file URL or a path), used in errors.
 * Throws SnapshotError `SERVICE_LOAD_FAILED` with `details: { file, line,
 * column }` (1-based) when the source does not parse.
 */
export const stripTypes = (source: string, filename: string): string => {
  const { transformSync } = loadStripper();
  try {
    return transformSync(source, { mode: 'strip-only', filename }).code;
  } catch (stripError) {
    try {
      return transformSync(source, { mode: 'transform', filename }).code;
    } catch {
      const file = displayPath(filename);
      if (isSwcError(stripError) && stripError.startLine !== undefined) {
        const line = stripError.startLine;
        const column = (stripError.startColumn ?? 0) + 1;
        const snippet = stripError.snippet ? `\n${stripError.snippet.replace(/\n$/, '').replace(/^/gm, '    ')}` : '';
        throw new SnapshotError('SERVICE_LOAD_FAILED', `${file}:${line}:${column}: TypeScript syntax error: ${stripError.message}${snippet}`, {
          cause: stripError,
          details: { file, line, column },
        });
      }
      const reason = isSwcError(stripError) ? stripError.message : String(stripError);
      throw new SnapshotError('SERVICE_LOAD_FAILED', `${file}: TypeScript does not parse: ${reason}`, { cause: stripError, details: { file } });
    }
  }
};

const decoder = new TextDecoder();
const encoder = new TextEncoder();

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
