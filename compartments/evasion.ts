/**
 * SES refuses sources in which `<!--`, `-->` or `import(` appear anywhere,
 * comments and strings included (SES_HTML_COMMENT_REJECTED,
 * SES_IMPORT_REJECTED): popular packages such as marked, moment, semver and
 * zod trip on it. @endo/evasive-transform rewrites just those comments,
 * strings and regular expressions so they keep their meaning and pass. It
 * runs at build time, only on sources that match SES's own patterns; the
 * archive stores the result, so restore needs nothing.
 */
import { evadeCensorSync } from '@endo/evasive-transform';

const censored = /<!--|-->|(^|[^.]|\.\.\.)\bimport(\s*(?:\(|\/[/*]))/;
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** The source, rewritten if SES would refuse it. */
export const evade = (source: string, sourceType: 'module' | 'script', location: string): string => {
  if (!censored.test(source)) return source;
  return evadeCensorSync(source, { sourceType, sourceUrl: location }).code;
};

type Language = 'mjs' | 'cjs';

const transform =
  (parser: Language) =>
  async (bytes: Uint8Array, _specifier: string, location: string, _packageLocation: string, params: { sourceMap?: string }) => {
    const source = decoder.decode(bytes);
    const evaded = evade(source, parser === 'mjs' ? 'module' : 'script', location);
    return { bytes: evaded === source ? bytes : encoder.encode(evaded), parser, sourceMap: params.sourceMap };
  };

/** compartment-mapper `moduleTransforms` applying the evasion to JavaScript modules. */
export const evasiveTransforms = () => ({ mjs: transform('mjs'), cjs: transform('cjs') });
