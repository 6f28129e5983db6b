/**
 * @module engine/prompt
 *
 * Turns what a user gives (text, chat messages or token ids) into prompt ids.
 */
import { InvalidInputError } from "../errors.js";
import type { ChatMessage } from "../tokenizer/tokenizer.js";
import type { Model } from "./model.js";

/** Chat messages; special-token text in them stays plain text unless `allowSpecialTokensInContent` (trusted messages only). */
export type Prompt = string | readonly number[] | { readonly messages: readonly ChatMessage[]; readonly allowSpecialTokensInContent?: boolean };

const PROMPT_KINDS = "the prompt must be a string, an array of token ids or { messages }";

/** Token ids of a prompt; chat messages go through the model's chat template. */
export function promptToIds(model: Model, prompt: Prompt): number[] {
  if (typeof prompt === "string") return model.requireTokenizer().encode(prompt, { addSpecialTokens: true });
  if (typeof prompt !== "object" || prompt === null) throw new InvalidInputError(`${PROMPT_KINDS}, got ${prompt === null ? "null" : typeof prompt}`);
  if ("messages" in prompt) {
    checkMessages(prompt.messages);
    // NOTE: the template writes the BOS text itself, so special tokens are not added again.
    return model.requireTokenizer().encodeChat(prompt.messages, { addGenerationPrompt: true, allowSpecialTokensInContent: prompt.allowSpecialTokensInContent ?? false });
  }
  if (!Array.isArray(prompt) && !ArrayBuffer.isView(prompt)) throw new InvalidInputError(`${PROMPT_KINDS}, got an object without messages`);
  return [...prompt];
}

/** Chat messages as the template reads them: a non-empty list of { role, content } strings (the server's schema too). */
function checkMessages(messages: unknown): void {
  if (!Array.isArray(messages) || messages.length === 0) throw new InvalidInputError("messages must be a non-empty array of { role, content }");
  messages.forEach((m: unknown, i) => {
    const ok = typeof m === "object" && m !== null && typeof (m as ChatMessage).role === "string" && typeof (m as ChatMessage).content === "string";
    if (!ok) throw new InvalidInputError(`messages[${i}] must be { role: string, content: string }, got ${m === null ? "null" : typeof m === "object" ? JSON.stringify(m).slice(0, 80) : typeof m}`);
  });
}
