/**
 * @module backends/backend.conformance
 *
 * The conformance suite every Backend passes (DESIGN.md §7): each op of the
 * interface on seeded random inputs against a plain reference, with the
 * tolerance each part states, and the device's semantics (queued writes,
 * reads as the only synchronisation, lifetimes, errors, yielding). It uses
 * the Backend interface only, so a GPU backend runs it unchanged. Call
 * runBackendConformance from a *.test.ts file.
 *
 * The parts, one file each under conformance/ (tolerances are max |error| /
 * max |reference|, a few times what the CPU backends reach; each file says
 * what it measured):
 * - device.ts: queued writes, read copies and round trips, zeroed tensors
 *   (also in reused memory), lifetimes, failing commands, availableBytes,
 *   dispose, yielding to the event loop;
 * - transformerOps.ts: uploadWeight, embed, add, copyRows, gatherRows exact;
 *   rmsNorm, rope, siluMul 5e-7; matmul 1e-6;
 * - kvOps.ts: writeKv's page bits exact (read back through attention),
 *   copySlots ranges, scatter into i32 and u8;
 * - attention.ts: pagedAttention over a step of several sequences against
 *   dense attention under DESIGN.md §3's rule, 2e-6, Quest's pages included;
 * - admission.ts: gateScores against gate/gateMath.ts, 1e-6; admit exact;
 * - quest.ts: updatePageBounds and questSelect exact;
 * - snapKv.ts: storeObservations exact; snapKvScores 1e-6;
 * - sampling.ts: sample exact per draw, and the distribution of many draws.
 */
import { after, before, describe } from "node:test";
import type { Backend } from "./backend.js";
import type { ConformanceContext } from "./conformance/context.js";
import { describeAdmission } from "./conformance/admission.js";
import { describeAttention } from "./conformance/attention.js";
import { describeDeviceSemantics } from "./conformance/device.js";
import { describeKvOps } from "./conformance/kvOps.js";
import { describeQuest } from "./conformance/quest.js";
import { describeSampling } from "./conformance/sampling.js";
import { describeSnapKv } from "./conformance/snapKv.js";
import { describeTransformerOps } from "./conformance/transformerOps.js";

export interface ConformanceOptions {
  /** See ConformanceContext.subnormalsMayFlush. */
  readonly subnormalsMayFlush?: boolean;
}

export function runBackendConformance(name: string, create: () => Promise<Backend>, options: ConformanceOptions = {}): void {
  describe(`backend conformance: ${name}`, () => {
    let backend: Backend | null = null;
    const ctx: ConformanceContext = {
      get backend(): Backend {
        if (!backend) throw new Error("the backend is only available inside tests");
        return backend;
      },
      create,
      subnormalsMayFlush: options.subnormalsMayFlush,
    };
    before(async () => {
      backend = await create();
    });
    after(() => backend?.dispose());
    describeDeviceSemantics(ctx);
    describeTransformerOps(ctx);
    describeKvOps(ctx);
    describeAttention(ctx);
    describeAdmission(ctx);
    describeQuest(ctx);
    describeSnapKv(ctx);
    describeSampling(ctx);
  });
}
