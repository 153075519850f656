#!/usr/bin/env node
/**
 * `node dist/lib/cli.js` as before: the CLI is dist/lib/cli.cjs (the
 * package's bin), which this runs.
 */
import './cli.cjs';
