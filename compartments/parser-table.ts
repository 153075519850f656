/**
 * compartment-mapper's parsers, by language, as the archive's wrappers
 * (load.ts, cjs-archive.ts, esm-archive.ts) take and return them: each
 * `parse(bytes, specifier, location, packageLocation, options)` answers a
 * record, or a promise of one.
 */
export type ParserTable = Record<string, { parse: (...args: never[]) => unknown }>;

/**
 * The same parsers, each result (the record, or what its promise settles
 * to) handed to `after` with the parse's arguments, and replaced by what
 * `after` returns. Throws what the parser or `after` throws.
 */
export const afterParse = <T extends ParserTable>(parsers: T, after: (result: unknown, args: readonly unknown[]) => unknown): T => {
  const out: ParserTable = {};
  for (const [language, parser] of Object.entries(parsers)) {
    out[language] = {
      ...parser,
      parse: (...args: never[]) => {
        const result = parser.parse(...args);
        return result instanceof Promise ? result.then(settled => after(settled, args)) : after(result, args);
      },
    };
  }
  return out as T;
};
