/**
 * @module cli/webApp
 *
 * The HTTP side of `wgkv web` (Hono): the page, the browser bundles, the
 * page's settings, the model folder's files under /model/ and the gate
 * under /gate/, with byte ranges. Only the files listed when the app is made
 * are served, looked up by exact name (one path segment), so no URL reaches
 * a file outside them (`..`, encoded slashes, subfolders).
 */
import { Hono } from "hono";
import { basename, join } from "node:path";
import { fileResponse } from "../platform/node/fileResponse.js";
import { renderWebPage, type WebPageConfig } from "../web/pageHtml.js";

export interface WebAppOptions {
  /** The model's name shown on the page. */
  readonly modelName: string;
  /** File name → path of each file of the model folder to serve. */
  readonly modelFiles: ReadonlyMap<string, string>;
  /** The gate file's path, or null to run full attention. */
  readonly gatePath: string | null;
  /** The folder holding wgkv.js and web-page.js (dist/browser). */
  readonly browserDir: string;
  /** The KV page pool the page asks for (the library's kvMemory), or null for its default. */
  readonly kvMemory: string | null;
}

const TEXT_TYPES: Record<string, string> = { ".json": "application/json", ".jinja": "text/plain; charset=utf-8", ".md": "text/markdown; charset=utf-8", ".txt": "text/plain; charset=utf-8" };

function typeOf(name: string): string {
  const dot = name.lastIndexOf(".");
  return (dot >= 0 && TEXT_TYPES[name.slice(dot).toLowerCase()]) || "application/octet-stream";
}

export function createWebApp(options: WebAppOptions): Hono {
  const app = new Hono();
  const gateName = options.gatePath ? basename(options.gatePath) : null;
  const config: WebPageConfig = {
    model: options.modelName,
    modelUrl: "/model/",
    gateUrl: gateName ? `/gate/${encodeURIComponent(gateName)}` : null,
    kvMemory: options.kvMemory,
  };
  const page = renderWebPage(options.modelName);
  const notFound = () => new Response("not found\n", { status: 404, headers: { "content-type": "text/plain" } });

  app.get("/", (c) => c.html(page));
  app.get("/config.json", (c) => c.json(config));
  for (const bundle of ["wgkv.js", "web-page.js"]) {
    app.get(`/${bundle}`, (c) => fileResponse(join(options.browserDir, bundle), c.req.raw, "text/javascript; charset=utf-8"));
  }
  app.get("/model/:name", (c) => {
    const name = c.req.param("name");
    const path = options.modelFiles.get(name);
    return path ? fileResponse(path, c.req.raw, typeOf(name)) : notFound();
  });
  app.get("/gate/:name", (c) => (options.gatePath && c.req.param("name") === gateName ? fileResponse(options.gatePath, c.req.raw) : notFound()));
  app.notFound(() => notFound());
  // NOTE: a file removed or made unreadable after startup: the page shows the status with the URL
  app.onError((err) => new Response(`cannot read the file (${(err as NodeJS.ErrnoException).code ?? "error"})\n`, { status: (err as NodeJS.ErrnoException).code === "ENOENT" ? 404 : 500 }));
  return app;
}
