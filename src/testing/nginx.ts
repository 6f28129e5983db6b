/**
 * @module testing/nginx
 *
 * A real nginx (Debian's /usr/sbin/nginx) in the foreground on a free
 * loopback port, balancing least-connections over the given backends, with
 * the configuration docs/deployment.md shows; everything it writes stays in
 * a temporary folder.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const NGINX = "/usr/sbin/nginx";

export interface TestBalancer {
  readonly url: string;
  readonly dir: string;
  stop(): Promise<void>;
}

/** A port free right now on 127.0.0.1 (nginx cannot be asked for port 0 and tell it back). */
export async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, "127.0.0.1");
  await once(s, "listening");
  const port = (s.address() as { port: number }).port;
  s.close();
  await once(s, "close");
  return port;
}

/** The nginx.conf for wgkv servers at `backends` (host:port), listening on `port`. */
export function nginxConfig(dir: string, port: number, backends: readonly string[]): string {
  return `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream wgkv {
    least_conn;
${backends.map((b) => `    server ${b} max_fails=1 fail_timeout=5s;`).join("\n")}
    keepalive 32;
  }
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 8m;
    location / {
      proxy_pass http://wgkv;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # token streams go out as they come
      proxy_buffering off;
      proxy_read_timeout 600s;
      # a backend that refuses (draining: 503, or gone) passes the request on; it ran nothing
      proxy_next_upstream error timeout http_503 non_idempotent;
    }
  }
}
`;
}

export async function startNginx(backends: readonly string[]): Promise<TestBalancer> {
  const dir = mkdtempSync(join(tmpdir(), "wgkv-nginx-"));
  const port = await freePort();
  writeFileSync(join(dir, "nginx.conf"), nginxConfig(dir, port, backends));
  const proc: ChildProcess = spawn(NGINX, ["-p", dir, "-c", join(dir, "nginx.conf")], { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  proc.stderr!.on("data", (d) => (err += d));
  const kill = () => proc.kill("SIGKILL");
  process.on("exit", kill);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (proc.exitCode !== null) throw new Error(`nginx exited ${proc.exitCode}: ${err}`);
    const ok = await fetch(`${url}/health`).then((r) => (r.body?.cancel(), true), () => false);
    if (ok) break;
    if (i > 200) throw new Error(`nginx did not answer: ${err}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    url, dir,
    async stop() {
      process.off("exit", kill);
      if (proc.exitCode !== null) return;
      proc.kill("SIGQUIT");
      await once(proc, "exit");
    },
  };
}
