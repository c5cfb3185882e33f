// The TypeScript types of the browser package: `tsc --noEmit --strict` over
// types-check.ts (tsconfig.json), which uses pkg/tandem.d.ts as an app
// would and marks misuse with `@ts-expect-error`, so that types that are
// missing, wrong or `any` fail this test.
//
// Run by scripts/test-page.sh with page.test.mjs (its counts are the page
// line's); by hand, from the repository root, with pkg/ built:
//
//   node --test tests/page/types.test.mjs

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const TYPES = path.resolve(HERE, "../../pkg/tandem.d.ts");
const TSC = path.join(HERE, "node_modules/typescript/bin/tsc");

test("pkg/tandem.d.ts types what an app calls, and refuses misuse", () => {
  assert.ok(existsSync(TYPES), `no ${TYPES}: build pkg/ first (scripts/setup.sh's build_pkg)`);
  assert.ok(existsSync(TSC), `no ${TSC}: npm ci in tests/page first`);
  const tsc = spawnSync(
    process.execPath,
    [TSC, "--noEmit", "--strict", "-p", path.join(HERE, "tsconfig.json")],
    { encoding: "utf8", timeout: 120_000 },
  );
  assert.equal(tsc.error, undefined, `tsc did not run: ${tsc.error}`);
  assert.equal(tsc.status, 0, `tsc found errors:\n${tsc.stdout}${tsc.stderr}`);
});
