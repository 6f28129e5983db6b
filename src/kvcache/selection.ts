/**
 * @module kvcache/selection
 *
 * Selection: at read time, which stored global entries does a decode query
 * read? "all", or Quest (Tang et al. 2024): per-page min/max key bounds give
 * an upper bound of q·k for every key of a page; the best pages are read
 * within a token budget. The local ring and the partial last global page are
 * always read. The bounds live per page in the pool and are recomputed when a
 * page is written; the device scores and chooses (backends' questSelect).
 */
import { InvalidInputError } from "../errors.js";

export interface SelectionPolicy {
  readonly name: string;
  readonly kind: "all" | "quest";
  /** quest: tokens of global pages a decode query reads at most. */
  readonly budget?: number;
}

/** Read every global entry. */
export const selectAll: SelectionPolicy = Object.freeze({ name: "all", kind: "all" });

export function questSelection(budgetTokens: number): SelectionPolicy {
  if (!Number.isInteger(budgetTokens) || budgetTokens <= 0) throw new InvalidInputError(`selection quest budget must be a positive integer, got ${budgetTokens}`);
  return Object.freeze({ name: `quest:${budgetTokens}`, kind: "quest", budget: budgetTokens });
}
