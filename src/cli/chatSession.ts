/**
 * @module cli/chatSession
 *
 * The conversation behind `wgkv chat`: the system prompt, the turns so far
 * (each answer is generated from the whole history through the chat
 * template), the commands (/stats, /reset, /system TEXT, /exit, /help), and
 * the KV figures so far. The terminal side is cli/chat.ts.
 */
import type { GenerateOptions, GenerationResult, GenerationStream } from "../engine/generation.js";
import type { KvReport } from "../engine/engineStats.js";
import type { ChatMessage } from "../tokenizer/tokenizer.js";

export type ChatCommand =
  | { readonly kind: "say"; readonly text: string }
  | { readonly kind: "stats" | "reset" | "exit" | "help" | "empty" }
  | { readonly kind: "system"; readonly text: string }
  | { readonly kind: "unknown"; readonly name: string };

export const CHAT_HELP = "commands: /stats (KV memory and admitted fraction so far), /reset (forget the conversation), /system TEXT (set the system prompt), /exit; Ctrl-C stops an answer";

export function parseChatLine(line: string): ChatCommand {
  const text = line.trim();
  if (text === "") return { kind: "empty" };
  if (!text.startsWith("/")) return { kind: "say", text: line };
  const [name, ...rest] = text.split(/\s+/);
  switch (name) {
    case "/stats":
    case "/reset":
    case "/exit":
    case "/help":
      return { kind: name.slice(1) as "stats" | "reset" | "exit" | "help" };
    case "/quit":
      return { kind: "exit" };
    case "/system":
      return { kind: "system", text: text.slice("/system".length).trim() };
    default:
      return { kind: "unknown", name };
  }
}

/** Starts a generation from a prompt (the CLI binds the model and the KV policy). */
export type StartGeneration = (prompt: { messages: ChatMessage[] }, options: GenerateOptions) => GenerationStream;

export class ChatSession {
  system = "";
  readonly turns: ChatMessage[] = [];
  /** The KV cache of the last answer: it held the whole conversation up to then. */
  lastKv: KvReport | null = null;
  numAnswers = 0;
  numGenerated = 0;
  #current: GenerationStream | null = null;

  constructor(
    readonly start: StartGeneration,
    readonly options: GenerateOptions,
  ) {}

  get isAnswering(): boolean {
    return this.#current !== null;
  }

  messages(): ChatMessage[] {
    return [...(this.system ? [{ role: "system", content: this.system }] : []), ...this.turns];
  }

  /** Streams the answer to `text` through `write`; the turn is kept even when stopped (with what was said so far). */
  async say(text: string, write: (delta: string) => void): Promise<GenerationResult> {
    this.turns.push({ role: "user", content: text });
    const stream = this.start({ messages: this.messages() }, this.options);
    this.#current = stream;
    try {
      for await (const chunk of stream) write(chunk.text);
      const result = await stream.result;
      this.turns.push({ role: "assistant", content: result.text });
      this.lastKv = result.kv;
      this.numAnswers++;
      this.numGenerated += result.tokenIds.length;
      return result;
    } catch (err) {
      this.turns.pop();
      throw err;
    } finally {
      this.#current = null;
    }
  }

  /** Stops the answer being generated (Ctrl-C); its pages return to the pool at once. */
  stop(): boolean {
    if (!this.#current) return false;
    this.#current.abort();
    return true;
  }

  reset(): void {
    this.turns.length = 0;
    this.lastKv = null;
  }

  /** /stats: the conversation's KV memory against full attention and the admitted fraction. */
  stats(): string {
    const kv = this.lastKv;
    const lines = [`${this.turns.length / 2 | 0} turns in the conversation, ${this.numAnswers} answers, ${this.numGenerated} tokens generated`];
    if (!kv) return [...lines, "no answer yet: no KV figures"].join("\n");
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;
    const admitted = kv.admittedByHead.flat().reduce((a, b) => a + b, 0);
    const entries = kv.numTokens * kv.admittedByHead.length * (kv.admittedByHead[0]?.length ?? 0);
    lines.push(
      `KV cache of the last answer: ${kv.numTokens} tokens; resident ${mib(kv.residentBytes)} (peak ${mib(kv.peakBytes)}) against ${mib(kv.fullAttentionBytes)} under full attention (${((kv.residentBytes / Math.max(1, kv.fullAttentionBytes)) * 100).toFixed(1)}%)`,
      `admitted fraction: ${(entries > 0 ? admitted / entries : 0).toFixed(3)} of ${entries} (layer, KV head, token) entries`,
    );
    return lines.join("\n");
  }
}
