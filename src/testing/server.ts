/**
 * @module testing/server
 *
 * Starts a real `wgkv serve` process on a free loopback port (--port 0; the
 * port is read from its first stdout line) and waits until /health says ok.
 * `stop()` sends SIGTERM and resolves with the exit status; a server left
 * running when the test process exits is killed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { CLI } from "./cli.js";
import { PROJECT_ROOT } from "./fixtures.js";

export const TINY_GATE = "models/wgkv-tiny-chat/gates/wgkv-tiny-chat-gate-0.016n.pt";
export const MODEL_ID = "wgkv-tiny-chat";

export interface TestServer {
  readonly port: number;
  readonly url: string;
  /** The API's base URL for the openai client. */
  readonly baseURL: string;
  readonly proc: ChildProcess;
  /** Everything the server wrote to stderr so far. */
  stderr(): string;
  /** SIGTERM; resolves with the exit code (or signal). */
  stop(signal?: NodeJS.Signals): Promise<number | string | null>;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const p of live) p.kill("SIGKILL");
});

export async function startServer(args: readonly string[] = [], options: { waitReady?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<TestServer> {
  // NOTE: two kernel threads: the suite runs beside other test files on a 2-core machine
  const proc = spawn(process.execPath, [CLI, "serve", "--port", "0", "--threads", "2", ...args], { cwd: PROJECT_ROOT, stdio: ["ignore", "pipe", "pipe"], env: options.env ?? process.env });
  live.add(proc);
  proc.on("exit", () => live.delete(proc));
  let out = "";
  let err = "";
  proc.stderr!.on("data", (d) => (err += d));
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d;
      const m = /listening on http:\/\/[^ ]+:(\d+)/.exec(out);
      if (m) {
        proc.stdout!.off("data", onData);
        resolve(Number(m[1]));
      }
    };
    proc.stdout!.on("data", onData);
    proc.once("exit", (code) => reject(new Error(`wgkv serve exited with ${code} before listening: ${err}`)));
  });
  proc.stdout!.resume();
  const url = `http://127.0.0.1:${port}`;
  if (options.waitReady ?? true) await waitHealthy(url);
  return {
    port, url, baseURL: `${url}/v1`, proc,
    stderr: () => err,
    async stop(signal = "SIGTERM") {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode ?? proc.signalCode;
      proc.kill(signal);
      const [code, sig] = (await once(proc, "exit")) as [number | null, string | null];
      return code ?? sig;
    },
  };
}

/** Polls /health until it answers 200 (at most `timeoutMs`). */
export async function waitHealthy(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await fetch(`${url}/health`).catch(() => null);
    if (r?.status === 200) return;
    await r?.body?.cancel();
    if (Date.now() > deadline) throw new Error(`${url}/health not ok after ${timeoutMs} ms`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

/** One metric's value from Prometheus text (the first sample of `name` with these labels). */
export function metricValue(text: string, name: string, labels = ""): number | null {
  for (const line of text.split("\n")) if (line.startsWith(`${name}${labels} `)) return Number(line.slice(line.lastIndexOf(" ") + 1));
  return null;
}

export async function scrape(url: string): Promise<string> {
  const r = await fetch(`${url}/metrics`);
  return r.text();
}

/** Polls /metrics until KV pages used is 0; resolves with the milliseconds that took. */
export async function waitPoolIdle(url: string, timeoutMs = 10_000): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const used = metricValue(await scrape(url), "wgkv_kv_pages_used");
    if (used === 0) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`KV pages still used after ${timeoutMs} ms: ${used}`);
    await new Promise((res) => setTimeout(res, 5));
  }
}

export { PROJECT_ROOT };
