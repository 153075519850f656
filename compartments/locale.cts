/**
 * Is this process's ICU default locale the pinned one?
 *
 * Services get the host's `Intl`, and V8 names the time zone in
 * `Date#toString` in the ICU default locale ("(Koordinierte Weltzeit)"
 * under de_DE): both follow the locale Node read from LC_ALL / LC_MESSAGES /
 * LANG at start-up, and nothing changes it once the process runs (Node 20
 * has no --icu-locale, and V8 caches it). Build and restore must therefore
 * run in one locale, en-US (what C, C.UTF-8, POSIX and en_US give); the CLI
 * re-executes itself under LC_ALL=C.UTF-8 when this says no, and only for
 * the commands that run services.
 *
 * No SES here: the CLI asks before it loads anything else.
 */

/** The locale every build and restore runs in (what ICU resolves C.UTF-8 to). */
export const PINNED_LOCALE = 'en-US';

/** Values of LC_ALL / LC_MESSAGES / LANG that ICU resolves to en-US (checked on Node 20, ICU 78). */
const resolvesToPinned = /^(C|POSIX|en_US)([.@][\w.@-]*)?$/;

/**
 * True when the ICU default locale is en-US. Decided from the environment
 * when it is one of the common English or C settings (free); otherwise by
 * asking ICU (about 12 ms: it loads the locale data).
 */
export const localeIsFixed = (): boolean => {
  // ICU takes the first of these that is set, as the C library does for LC_MESSAGES.
  const setting = ['LC_ALL', 'LC_MESSAGES', 'LANG'].map(name => process.env[name]).find(value => value !== undefined);
  if (setting === undefined || resolvesToPinned.test(setting)) return true;
  return new Intl.DateTimeFormat().resolvedOptions().locale === PINNED_LOCALE;
};
