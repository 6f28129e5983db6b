/**
 * @module server/responders
 *
 * Running an admitted request and sending its answer: one JSON body, or a
 * server-sent event stream exactly as OpenAI frames it: `data: <chunk>`
 * events (chat's first one carries the role), the finish reason in the last
 * choice chunk, a usage chunk with no choices when asked for, then
 * `data: [DONE]`. The client's connection is the generation's abort signal:
 * when it closes, mid-prompt or mid-stream, the engine drops the sequence
 * and its KV pages return to the pool at once.
 */
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { KvPolicy } from "../kvcache/kvPolicy.js";
import { clientGone, toErrorResponse } from "./errors.js";
import type { TokenLogprob } from "./logprobs.js";
import type { ServerMetrics } from "./metrics.js";
import { chunk, finishReason, fullResponse, kvStats, newMeta, usageChunk } from "./openaiFormat.js";
import type { RequestPlan } from "./requestPlan.js";
import type { Serving } from "./serving.js";

/** An admitted request: its plan and KV policy, its client's signal and its slot's release. */
export interface AdmittedRequest {
  readonly serving: Serving;
  readonly plan: RequestPlan;
  readonly policy: KvPolicy;
  readonly signal: AbortSignal;
  readonly release: () => void;
  readonly arrivedAt: number;
  readonly metrics: ServerMetrics;
}

export async function runNonStreaming(c: Context, req: AdmittedRequest): Promise<Response> {
  const { serving, plan } = req;
  let firstAt: number | null = null;
  try {
    const { stream, logprobs } = serving.start(plan, req.policy, req.signal);
    const entries: TokenLogprob[] = [];
    for await (const ch of stream) {
      firstAt ??= performance.now();
      if (logprobs && ch.tokenId >= 0) {
        const e = logprobs.take(ch.tokenId);
        if (e && !serving.model.eosTokenIds.has(ch.tokenId)) entries.push(e);
      }
    }
    const result = await stream.result;
    if (result.finishReason === "aborted") throw clientGone();
    req.metrics.observeGeneration(result, req.arrivedAt, firstAt, performance.now());
    return c.json(fullResponse(newMeta(plan.kind, serving.id), result, logprobs ? entries : null));
  } finally {
    req.release();
  }
}

export function runStreaming(c: Context, req: AdmittedRequest, logError: (err: unknown) => void): Response {
  const { serving, plan } = req;
  const meta = newMeta(plan.kind, serving.id);
  const send = (sse: { writeSSE(m: { data: string }): Promise<void> }, body: unknown) => sse.writeSSE({ data: JSON.stringify(body) });
  return streamSSE(c, async (sse) => {
    let firstAt: number | null = null;
    try {
      const { stream, logprobs } = serving.start(plan, req.policy, req.signal);
      sse.onAbort(() => stream.abort());
      if (plan.kind === "chat") await send(sse, chunk(meta, { role: true }, plan.includeUsage));
      let pending: TokenLogprob[] = [];
      let offset = 0;
      for await (const ch of stream) {
        firstAt ??= performance.now();
        if (logprobs && ch.tokenId >= 0) {
          const e = logprobs.take(ch.tokenId);
          if (e && !serving.model.eosTokenIds.has(ch.tokenId)) pending.push(e);
        }
        // NOTE: a token whose text is held back (a possible stop string, half a character) sends nothing yet
        if (ch.text.length === 0) continue;
        await send(sse, chunk(meta, { text: ch.text, logprobs: logprobs ? pending : null, textOffset: offset }, plan.includeUsage));
        offset += ch.text.length;
        pending = [];
      }
      const result = await stream.result;
      if (result.finishReason === "aborted") return;
      req.metrics.observeGeneration(result, req.arrivedAt, firstAt, performance.now());
      const last = chunk(meta, { logprobs: logprobs && pending.length > 0 ? pending : null, textOffset: offset, finish: finishReason(result.finishReason) }, plan.includeUsage);
      await send(sse, { ...last, wgkv: kvStats(result) });
      if (plan.includeUsage) await send(sse, usageChunk(meta, result));
      await sse.writeSSE({ data: "[DONE]" });
    } catch (err) {
      // NOTE: the status line is sent; OpenAI reports a failure mid-stream as an event holding the error
      if (!sse.aborted) await send(sse, toErrorResponse(err, logError).body);
    } finally {
      req.release();
    }
  });
}
