// Runs the compiled test files (build/**/*.test.js), each in its own process
// under node's test runner, with a time limit per file: a file that has not
// exited when its time is up (a test that hangs, or a process kept alive at
// exit, e.g. by a worker thread) is killed and named, instead of the whole run
// hanging until CI's limit with no clue which file it was.
//
//   node scripts/run-tests.mjs                  # every test file under build/
//   node scripts/run-tests.mjs build/cli        # the files under a folder, or given files
//
// Environment: WGKV_TEST_FILE_TIMEOUT_S (default 300) bounds each file,
// WGKV_TEST_TIMEOUT_S (default 240) each test inside it (node's --test-timeout),
// WGKV_TEST_CONCURRENCY (default: cores - 1, at least 1, as `node --test`) the
// files run at once, WGKV_TEST_TIMEOUT_RETRIES (default 1) how often a killed
// file runs again (NOTE: Node 20 now and then hangs at exit shutting down
// worker threads, after every test passed; a file that hangs every time
// fails). Passing files print one line; a failing or killed file prints its
// whole output. Exits 1 if any file failed or was killed on its last run.
import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, relative } from "node:path";

/** A whole number >= min from the environment, else `fallback`. */
function envNumber(name, fallback, min = 1) {
  const value = process.env[name];
  if (value === undefined || value === "") return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min) {
    console.error(`run-tests: ${name} must be a whole number >= ${min}, got "${value}"`);
    process.exit(1);
  }
  return Number(value);
}
const FILE_TIMEOUT_S = envNumber("WGKV_TEST_FILE_TIMEOUT_S", 300);
const TEST_TIMEOUT_S = envNumber("WGKV_TEST_TIMEOUT_S", 240);
const CONCURRENCY = envNumber("WGKV_TEST_CONCURRENCY", Math.max(1, availableParallelism() - 1));
const TIMEOUT_RETRIES = envNumber("WGKV_TEST_TIMEOUT_RETRIES", 1, 0);

/** Test files under `path` (a folder or a file), sorted for a stable order. */
function testFiles(path) {
  let info;
  try {
    info = statSync(path);
  } catch {
    console.error(`run-tests: ${path}: no such file or folder (run the build first: npm test builds it)`);
    process.exit(1);
  }
  if (!info.isDirectory()) return [path];
  return readdirSync(path, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((e) => (e.isDirectory() ? testFiles(join(path, e.name)) : e.name.endsWith(".test.js") ? [join(path, e.name)] : []));
}

/** The counts of a TAP summary ("# pass 12"), zero where absent. */
function tapCounts(output) {
  const count = (key) => Number(new RegExp(`^# ${key} (\\d+)$`, "m").exec(output)?.[1] ?? 0);
  return { tests: count("tests"), pass: count("pass"), fail: count("fail"), cancelled: count("cancelled"), skipped: count("skipped"), todo: count("todo") };
}

// NOTE: a runner started from inside a test (NODE_TEST_CONTEXT set) would make
// `node --test` talk its internal protocol instead of TAP.
const CHILD_ENV = { ...process.env };
delete CHILD_ENV.NODE_TEST_CONTEXT;

/** Runs one file; resolves with its outcome. */
function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    // NOTE: detached puts the file's process (and the test runner's child for
    // it) in a process group of its own, so a timeout kills both.
    const child = spawn(process.execPath, ["--test", "--test-reporter=tap", `--test-timeout=${TEST_TIMEOUT_S * 1000}`, file], {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
      env: CHILD_ENV,
    });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    }, FILE_TIMEOUT_S * 1000);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ file, code, signal, timedOut, output, seconds: (Date.now() - started) / 1000, counts: tapCounts(output) });
    });
  });
}

const roots = process.argv.slice(2);
const files = (roots.length ? roots : ["build"]).flatMap(testFiles);
if (files.length === 0) {
  console.error(`run-tests: no *.test.js files under ${roots.join(", ") || "build"}`);
  process.exit(1);
}

const results = [];
let next = 0;
async function worker() {
  while (next < files.length) {
    const file = files[next++];
    let r = await runFile(file);
    for (let retry = 1; r.timedOut && retry <= TIMEOUT_RETRIES; retry++) {
      console.log(`TIMEOUT ${relative(process.cwd(), file)}: killed after ${FILE_TIMEOUT_S} s; running it again (${retry} of ${TIMEOUT_RETRIES})`);
      r = await runFile(file);
    }
    results.push(r);
    const name = relative(process.cwd(), r.file);
    const c = r.counts;
    const failed = r.timedOut || r.code !== 0 || c.fail > 0 || c.cancelled > 0;
    if (r.timedOut) {
      console.log(r.output.trimEnd());
      console.log(`TIMEOUT ${name}: killed after ${FILE_TIMEOUT_S} s (a test still running, or the process kept alive after its tests ended)`);
    } else if (failed) {
      console.log(r.output.trimEnd());
      console.log(`FAIL ${name}: exit ${r.code ?? r.signal}, ${c.fail} failed, ${c.cancelled} cancelled (${r.seconds.toFixed(1)} s)`);
    } else {
      console.log(`ok   ${name}: ${c.pass} passed${c.skipped ? `, ${c.skipped} skipped` : ""} (${r.seconds.toFixed(1)} s)`);
    }
  }
}
await Promise.all(Array.from({ length: Math.min(CONCURRENCY, files.length) }, worker));

const sum = (key) => results.reduce((s, r) => s + r.counts[key], 0);
const badFiles = results.filter((r) => r.timedOut || r.code !== 0 || r.counts.fail > 0 || r.counts.cancelled > 0);
console.log(`\n# files ${results.length}, failed or killed ${badFiles.length}${badFiles.length ? ": " + badFiles.map((r) => relative(process.cwd(), r.file)).join(", ") : ""}`);
// The closing line CI reads: counts of tests over all files.
// A file killed or failed with no failing test counted (it crashed before its
// summary) still counts as one failure.
const uncounted = badFiles.filter((r) => r.counts.fail + r.counts.cancelled === 0).length;
console.log(`tests: ${sum("pass")} passed, ${sum("fail") + sum("cancelled") + uncounted} failed, ${sum("skipped")} skipped`);
process.exit(badFiles.length ? 1 : 0);
