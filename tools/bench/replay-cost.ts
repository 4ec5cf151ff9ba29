/**
 * What each target's workflow code costs a worker, apart from everything else it does: finished
 * tasks' histories replayed through the SDK's replayer, which runs the same bundle in the same
 * workflow thread and reused V8 context as a live worker, but with no server, no activities and no
 * network. Its CPU per task is the workflow side of a worker's cost (creating the workflow, its
 * activations, promises, payload conversion), measured without the engine's noise: a closed loop on
 * two shared cores moves by 10 % between runs, a replay by a few. Rounds alternate the targets.
 */
import type { temporal } from '@temporalio/proto';
import { bundleWorkflowCode, DefaultLogger, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { WORKFLOW_BUNDLE_OPTIONS } from '../../src/worker/task-worker.js';
import { log } from './clock.js';
import { round } from './distribution.js';
import type { TargetName } from './capacity-report.js';

type History = temporal.api.history.v1.IHistory;

export interface ReplayCost {
  /** Distinct histories replayed (tasks done at the limit in the target's runs). */
  histories: number;
  /** Replays per round. */
  replays: number;
  /** CPU ms per replayed task (every thread of this process), per round. */
  cpuMsPerTask: number[];
  /** The lowest round's: the least disturbed by anything else on the machine. */
  bestCpuMsPerTask: number;
}

/** AsyncQueue's workflows bundled as its worker bundles them (src/worker/task-worker.ts). */
export function asyncQueueBundle(): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({ ...WORKFLOW_BUNDLE_OPTIONS, logger: new DefaultLogger('WARN') });
}

export interface ReplayTarget {
  bundle: WorkflowBundleWithSourceMap;
  /** Finished workflows' histories; none: the target is not measured. */
  histories: History[];
}

/** Replays each target's histories over and over, `replays` per round, the targets' order alternating. */
export async function replayCosts(
  targets: Partial<Record<TargetName, ReplayTarget>>,
  { replays, rounds }: { replays: number; rounds: number },
): Promise<Record<TargetName, ReplayCost | null>> {
  const perRound: Record<TargetName, number[]> = { baseline: [], asyncqueue: [] };
  const names = (Object.keys(targets) as TargetName[]).filter((name) => (targets[name]?.histories.length ?? 0) > 0);
  // One unmeasured round first: the replayer's own start-up and the JIT's warm-up.
  for (let roundNo = 0; roundNo <= rounds; roundNo++) {
    for (const name of roundNo % 2 === 0 ? names : [...names].reverse()) {
      const { bundle, histories } = targets[name]!;
      const cpuMs = await replayRound(bundle, histories, roundNo === 0 ? Math.min(200, replays) : replays);
      if (roundNo > 0) perRound[name].push(round(cpuMs, 3) ?? 0);
    }
  }
  const cost = (name: TargetName): ReplayCost | null =>
    perRound[name].length === 0
      ? null
      : {
          histories: targets[name]!.histories.length,
          replays,
          cpuMsPerTask: perRound[name],
          bestCpuMsPerTask: Math.min(...perRound[name]),
        };
  return { baseline: cost('baseline'), asyncqueue: cost('asyncqueue') };
}

/** CPU ms per task of replaying `count` histories (cycling through `histories`). */
async function replayRound(bundle: WorkflowBundleWithSourceMap, histories: History[], count: number): Promise<number> {
  async function* source(): AsyncGenerator<{ workflowId: string; history: History }> {
    for (let i = 0; i < count; i++) yield { workflowId: `replay-${i}`, history: histories[i % histories.length]! };
  }
  const before = process.cpuUsage();
  let failed = 0;
  for await (const result of Worker.runReplayHistories({ workflowBundle: bundle, replayName: 'bench-replay' }, source())) {
    if (result.error !== undefined && failed++ === 0) log(`replay failed: ${String(result.error)}`);
  }
  // A history that does not replay measures an error path, not the workflow: say so, loudly.
  if (failed > 0) throw new Error(`${failed} of ${count} replays failed (the bundle is not the one that ran them)`);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000 / count;
}
