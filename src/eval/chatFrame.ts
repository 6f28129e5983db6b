/**
 * @module eval/chatFrame
 *
 * The token ids around a task's user message and its answer, built the way
 * the default model's training prompts were.
 *
 * NOTE: the golden NIAH prompt (fixtures/golden-tiny-chat.json) was assembled
 * from separately tokenized pieces: the header text
 * `<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n` tokenizes
 * its trailing "\n\n" as the single token 488, while tokenizing the whole
 * rendered template splits it into 203 203, because the byte-level
 * pre-tokenizer leaves a newline run's last character to the word after it.
 * Encoding the frame pieces apart from the content reproduces the golden ids,
 * so the model sees its training distribution.
 */
import type { TextTokenizer } from "../tokenizer/tokenizer.js";

/** Ids before and after a user message, and the ids that end an assistant turn. */
export interface ChatFrame {
  /** BOS and the user header, e.g. [0, 2, 2862, 3, 488]. */
  readonly userPrefix: readonly number[];
  /** End of the user turn and the assistant header, e.g. [4, 2, 390, 400, 773, 3, 488]. */
  readonly assistantPrefix: readonly number[];
  /** What closes an assistant answer, e.g. [4] (<|eot_id|>). */
  readonly endOfTurn: readonly number[];
}

// A string no template or tokenizer treats specially, to find where content goes.
const SLOT = "\u0001SLOT\u0001";

/** The chat frame of a tokenizer's chat template (Llama-3, Qwen and other templates alike). */
export function chatFrame(tokenizer: TextTokenizer): ChatFrame {
  const asked = tokenizer.applyChatTemplate([{ role: "user", content: SLOT }], { addGenerationPrompt: true });
  const [before, after] = splitOnce(asked, SLOT);
  const answered = tokenizer.applyChatTemplate(
    [
      { role: "user", content: "x" },
      { role: "assistant", content: SLOT },
    ],
    { addGenerationPrompt: false },
  );
  const [, closing] = splitOnce(answered, SLOT);
  // NOTE: templates end a turn with e.g. "<|eot_id|>" or "<|im_end|>\n"; only the
  // first special token is what the model must predict, trailing text is framing.
  const endOfTurn = tokenizer.encode(closing, { addSpecialTokens: false });
  return {
    userPrefix: tokenizer.encode(before, { addSpecialTokens: false }),
    assistantPrefix: tokenizer.encode(after, { addSpecialTokens: false }),
    endOfTurn: endOfTurn.slice(0, 1),
  };
}

/** A whole prompt: frame + user content ids + assistant header. */
export function framePrompt(frame: ChatFrame, contentIds: readonly number[]): number[] {
  return [...frame.userPrefix, ...contentIds, ...frame.assistantPrefix];
}

/** The ids the model must produce for an answer sentence, end of turn included. */
export function frameAnswer(frame: ChatFrame, tokenizer: TextTokenizer, answer: string): number[] {
  return [...tokenizer.encode(answer, { addSpecialTokens: false }), ...frame.endOfTurn];
}

/** Number of ids the frame adds around content and answer. */
export function frameOverhead(frame: ChatFrame): number {
  return frame.userPrefix.length + frame.assistantPrefix.length;
}

function splitOnce(text: string, marker: string): [string, string] {
  const at = text.indexOf(marker);
  if (at < 0) throw new Error("the chat template dropped the message content");
  return [text.slice(0, at), text.slice(at + marker.length)];
}
