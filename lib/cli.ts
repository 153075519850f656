/**
 * `node dist/lib/cli.js` as before: the CLI is dist/lib/cli.cjs (the
 * package's bin, the file to execute), which this runs.
 */
import './cli.cjs';
