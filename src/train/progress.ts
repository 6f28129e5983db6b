/**
 * @module train/progress
 *
 * Text of the trainer's progress: one line per step for logs, or a bar
 * redrawn in place on a terminal. Platform-neutral: the CLI writes them.
 */
import type { StepReport } from "./trainer.js";

/** 3h05m, 4m12s, 9.3s. */
export function formatDuration(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

function fields(r: StepReport): string {
  return `loss ${r.loss.toFixed(5)}  distill ${r.mse.toFixed(5)}  sparsity ${r.sparsity.toFixed(4)}  admitted ${r.admitted.toFixed(3)}  lr ${r.lr.toExponential(2)}  ` +
    `${formatDuration(r.stepMs)}/step  ${formatDuration(r.etaMs)} left`;
}

/** A log line: "step 12/600  loss ...". */
export function progressLine(r: StepReport): string {
  return `step ${r.step}/${r.steps}  ${fields(r)}`;
}

/** A bar for a terminal `columns` wide: "[=====>      ] 12/600 loss ...", cut to fit. */
export function progressBar(r: StepReport, columns: number): string {
  const width = 24;
  const done = Math.round((r.step / r.steps) * width);
  const bar = `[${"=".repeat(Math.max(0, done - 1))}${done > 0 ? (done === width ? "=" : ">") : ""}${" ".repeat(width - done)}]`;
  const text = `${bar} ${r.step}/${r.steps}  ${fields(r)}`;
  return text.length > columns - 1 ? text.slice(0, Math.max(0, columns - 1)) : text;
}
