/**
 * @module engine/prompt
 *
 * Turns what a user gives (text, chat messages or token ids) into prompt ids.
 */
import type { ChatMessage } from "../tokenizer/tokenizer.js";
import type { Model } from "./model.js";

/** Chat messages; special-token text in them stays plain text unless `allowSpecialTokensInContent` (trusted messages only). */
export type Prompt = string | readonly number[] | { readonly messages: readonly ChatMessage[]; readonly allowSpecialTokensInContent?: boolean };

/** Token ids of a prompt; chat messages go through the model's chat template. */
export function promptToIds(model: Model, prompt: Prompt): number[] {
  if (typeof prompt === "string") return model.requireTokenizer().encode(prompt, { addSpecialTokens: true });
  if ("messages" in prompt) {
    // NOTE: the template writes the BOS text itself, so special tokens are not added again.
    return model.requireTokenizer().encodeChat(prompt.messages, { addGenerationPrompt: true, allowSpecialTokensInContent: prompt.allowSpecialTokensInContent ?? false });
  }
  return [...prompt];
}
