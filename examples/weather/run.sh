#!/usr/bin/env bash
# The weather example end to end (`npm run example`, from the repository root):
#
#   1. build a snapshot of the weather service, against a forecast API that
#      the build script serves on loopback and closes when it is done;
#   2. copy only the snapshot directory to a fresh directory (no sources, no
#      node_modules, and the API is gone);
#   3. restore it there and check that the restored state equals the state
#      the service had at build time;
#   4. inspect and verify the snapshot.
#
# Exits non-zero if any step fails or the restored state differs.
# Set KEEP_EXAMPLE=1 to keep the temporary directories.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
example="$repo/examples/weather"
cli="$repo/dist/lib/cli.cjs"

heading() {
  printf '\n==> %s\n' "$*"
}

if [[ ! -f "$cli" ]]; then
  echo "run.sh: $cli is missing: run \`npm run build\` in $repo first." >&2
  exit 1
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/weather-example.XXXXXX")"
cleanup() {
  if [[ "${KEEP_EXAMPLE:-}" == 1 ]]; then
    echo "(kept $work)"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

build_dir="$work/build"
target="$work/target"
mkdir -p "$build_dir" "$target"

heading "1. Build: record the weather service (cwd: examples/weather)"
echo "\$ snapshot build build.mjs --out $build_dir/snapshot"
(cd "$example" && WEATHER_STATE_FILE="$work/build-state.json" node "$cli" build build.mjs --out "$build_dir/snapshot")

heading "2. Copy only the snapshot directory to a fresh directory"
cp -R "$build_dir/snapshot" "$target/snapshot"
echo "$target now holds:"
(cd "$target" && find . -type f | sort | sed 's/^/  /')
if [[ -e "$target/node_modules" || -e "$target/package.json" ]]; then
  echo "run.sh: $target is not a clean directory" >&2
  exit 1
fi

heading "3. The forecast API of the build is gone"
api="$(node -e 'process.stdout.write(JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8")).source)' "$work/build-state.json")"
node -e '
fetch(process.argv[1] + "/v1/forecast").then(
  r => { console.log(`  ${process.argv[1]} still answers (HTTP ${r.status})`); },
  e => { console.log(`  ${process.argv[1]} does not answer: ${e.cause?.code ?? e.message}`); },
);' "$api"

heading "4. Restore in the fresh directory and call weather.describe()"
echo "\$ cd $target && snapshot restore snapshot --call weather.describe"
(cd "$target" && node "$cli" restore snapshot --call weather.describe) | tee "$work/restored-state.json"

heading "5. Compare the restored state with the build-time state"
node -e '
const fs = require("node:fs");
const assert = require("node:assert");
const [builtFile, restoredFile] = process.argv.slice(1);
const builtText = fs.readFileSync(builtFile, "utf8").trim();
const restoredText = fs.readFileSync(restoredFile, "utf8").trim();
const built = JSON.parse(builtText);
const restored = JSON.parse(restoredText);
try {
  assert.deepStrictEqual(restored, built);
} catch (error) {
  console.error("  DIFFERENT: the restored state is not the build-time state");
  console.error(error.message);
  process.exit(1);
}
if (restoredText !== builtText) {
  console.error("  DIFFERENT: same values, but not the same JSON text (key order?)");
  process.exit(1);
}
console.log(`  identical: ${Object.keys(built).length} top-level keys, ${Object.keys(built.cities).length} forecasts, ${builtText.length} bytes of JSON`);
console.log(`  loadedAt ${restored.loadedAt}, requestId ${restored.requestId}, tip "${restored.tip}"`);
console.log(`  retries ${JSON.stringify(restored.retries)}`);
' "$work/build-state.json" "$work/restored-state.json"

heading "6. Once restored, the service is live: forecast(\"Oslo\") is stamped with this host's clock"
echo "\$ snapshot restore snapshot --call weather.forecast --args '[\"Oslo\"]'"
(cd "$target" && node "$cli" restore snapshot --call weather.forecast --args '["Oslo"]')

heading "7. Inspect the snapshot and its replay log"
echo "\$ snapshot inspect snapshot"
(cd "$target" && node "$cli" inspect snapshot)
echo
echo "\$ snapshot inspect snapshot/weather/replay.log"
(cd "$target" && node "$cli" inspect snapshot/weather/replay.log)

heading "8. Verify: replay every service in a fresh process"
echo "\$ snapshot verify snapshot"
(cd "$target" && node "$cli" verify snapshot)

heading "Done: the snapshot restored without sources, node_modules or network, to the build-time state."
