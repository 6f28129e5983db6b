/**
 * `npm test`'s runner (scripts/run-tests.mjs) bounds every test file's time:
 * a file whose process outlives its limit (here: one kept alive after its
 * tests pass, as a worker thread that never exits would) is killed with its
 * children, retried as configured, and named; other files pass or fail as
 * usual, and the closing line counts them.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PROJECT_ROOT } from "../testing/fixtures.js";

const RUNNER = join(PROJECT_ROOT, "scripts/run-tests.mjs");
let tmp = "";

/** True while `pid` runs; a killed process not yet reaped (a zombie, state Z in /proc) has stopped. */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, "utf8") : "";
  return !/\) Z /.test(stat);
}

before(() => {
  tmp = mkdtempSync(join(tmpdir(), "wgkv-runner-test-"));
  writeFileSync(join(tmp, "pass.test.js"), `import { test } from "node:test"; test("passes", () => {});\n`);
  writeFileSync(join(tmp, "fail.test.js"), `import { test } from "node:test"; import assert from "node:assert"; test("fails", () => assert.equal(1, 2));\n`);
  // Passes its test, then never exits; records each run's pid.
  writeFileSync(
    join(tmp, "hang.test.js"),
    `import { test } from "node:test"; import { appendFileSync } from "node:fs";
appendFileSync(${JSON.stringify(join(tmp, "hang.pids"))}, process.pid + "\\n");
test("passes, then the process stays alive", () => { setInterval(() => {}, 1000); });\n`,
  );
});
after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test("a file that hangs is killed, retried once, and named; the others report as usual", () => {
  const started = performance.now();
  const r = spawnSync(process.execPath, [RUNNER, tmp], {
    cwd: tmp,
    encoding: "utf8",
    env: { ...process.env, WGKV_TEST_FILE_TIMEOUT_S: "2", WGKV_TEST_TIMEOUT_RETRIES: "1", WGKV_TEST_CONCURRENCY: "3" },
    timeout: 60_000,
  });
  const seconds = (performance.now() - started) / 1000;
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.ok(seconds < 30, `took ${seconds} s`);
  assert.match(r.stdout, /^TIMEOUT hang\.test\.js: killed after 2 s; running it again \(1 of 1\)$/m);
  assert.match(r.stdout, /^TIMEOUT hang\.test\.js: killed after 2 s \(a test still running, or the process kept alive after its tests ended\)$/m);
  assert.match(r.stdout, /^ok {3}pass\.test\.js: 1 passed/m);
  assert.match(r.stdout, /^FAIL fail\.test\.js: exit 1, 1 failed/m);
  assert.match(r.stdout, /^# files 3, failed or killed 2: fail\.test\.js, hang\.test\.js$/m);
  assert.match(r.stdout, /^tests: 1 passed, 2 failed, 0 skipped$/m);
  // Both runs' processes are gone: the kill reached the test file's own process, not only the runner's child.
  const pids = readFileSync(join(tmp, "hang.pids"), "utf8").trim().split("\n").map(Number);
  assert.equal(pids.length, 2);
  for (const pid of pids) assert.ok(!isRunning(pid), `process ${pid} is still running`);
});

test("passing files exit 0 with one line each and the closing count", () => {
  const r = spawnSync(process.execPath, [RUNNER, join(tmp, "pass.test.js")], { cwd: tmp, encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.equal(r.stdout.trim().split("\n").at(-1), "tests: 1 passed, 0 failed, 0 skipped");
  assert.ok(existsSync(join(tmp, "pass.test.js")));
});
