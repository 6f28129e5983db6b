/** `wgkv serve`'s flag and start-up errors: one line, status 1, no stack trace. */
import { test } from "node:test";
import { createServer } from "node:net";
import { once } from "node:events";
import { expectCliError } from "../testing/cli.js";

test("bad flags are refused before anything listens", () => {
  expectCliError(["serve", "--port", "70000"], ["--port", "65535"]);
  expectCliError(["serve", "--port", "http"], ["--port"]);
  expectCliError(["serve", "--max-queue", "-1"], ["--max-queue"]);
  expectCliError(["serve", "--max-body", "lots"], ["--max-body", "lots"]);
  expectCliError(["serve", "--api-key", " "], ["--api-key"]);
  expectCliError(["serve", "--tau", "0.2"], ["--tau"]);
});

test("a port in use and a missing model folder end the server with one line", async () => {
  const blocker = createServer().listen(0, "127.0.0.1");
  await once(blocker, "listening");
  const port = String((blocker.address() as { port: number }).port);
  try {
    expectCliError(["serve", "--port", port], ["--port", port, "already in use"]);
  } finally {
    blocker.close();
  }
  expectCliError(["serve", "--port", "0", "--model", "/nonexistent/model"], ["/nonexistent/model", "not found"]);
});
