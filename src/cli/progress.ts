/**
 * @module cli/progress
 *
 * Progress of long operations (model load, long prefill, eval, bench) on
 * stderr: a bar redrawn in place on a terminal, a plain line at each tenth
 * otherwise (logs and pipes get no carriage returns), nothing with --quiet.
 */

export interface Progress {
  /** `done` of `total` units so far. */
  update(done: number, total: number): void;
  /** Ends the bar (a terminal gets its newline). */
  end(): void;
}

export interface ProgressOptions {
  readonly quiet?: boolean;
  /** Defaults to process.stderr. */
  readonly stream?: NodeJS.WriteStream;
  /** How a count prints ("123 MiB", "1,024 tokens"). */
  readonly format?: (n: number) => string;
}

const WIDTH = 30;

export function createProgress(label: string, options: ProgressOptions = {}): Progress {
  const out = options.stream ?? process.stderr;
  const fmt = options.format ?? ((n: number) => String(n));
  if (options.quiet) return { update() {}, end() {} };
  if (out.isTTY) {
    let drawn = false;
    let lastDraw = 0;
    return {
      update(done, total) {
        const now = Date.now();
        if (done < total && now - lastDraw < 100) return;
        lastDraw = now;
        const f = total > 0 ? Math.min(1, done / total) : 1;
        const filled = Math.round(f * WIDTH);
        out.write(`\r${label} [${"#".repeat(filled)}${"-".repeat(WIDTH - filled)}] ${Math.floor(f * 100)}% ${fmt(done)}/${fmt(total)}\x1b[K`);
        drawn = true;
      },
      end() {
        if (drawn) out.write("\n");
        drawn = false;
      },
    };
  }
  let lastTenth = -1;
  return {
    update(done, total) {
      const tenth = total > 0 ? Math.floor((Math.min(done, total) / total) * 10) : 10;
      if (tenth <= lastTenth) return;
      lastTenth = tenth;
      out.write(`${label}: ${tenth * 10}% (${fmt(done)} of ${fmt(total)})\n`);
    },
    end() {},
  };
}
