/**
 * @module engine/prompt
 *
 * Turns what a user gives (text, chat messages or token ids) into prompt ids.
 */
import type { ChatMessage } from "../tokenizer/tokenizer.js";
import type { Model } from "./model.js";

export type Prompt = string | readonly number[] | { readonly messages: readonly ChatMessage[] };

/** Token ids of a prompt; chat messages go through the model's chat template. */
export function promptToIds(model: Model, prompt: Prompt): number[] {
  if (typeof prompt === "string") return model.requireTokenizer().encode(prompt, { addSpecialTokens: true });
  if ("messages" in prompt) {
    const tokenizer = model.requireTokenizer();
    // NOTE: the template writes the BOS text itself, so special tokens are not added again.
    return tokenizer.encode(tokenizer.applyChatTemplate(prompt.messages, { addGenerationPrompt: true }), { addSpecialTokens: false });
  }
  return [...prompt];
}
