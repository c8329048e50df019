/**
 * Learning-rate schedules with warmup, named as Hugging Face's `lr_scheduler_type`:
 *   constant: lr after warmup
 *   linear:   lr decays linearly to 0 at the last step (the HF Trainer's default)
 *   cosine:   lr follows half a cosine down to minLrRatio·lr (0 by default)
 * Warmup ramps linearly. Unlike HF, the first step uses lr/warmup rather than 0, so no step is wasted.
 */
export type LrSchedulerType = "constant" | "linear" | "cosine";

export interface Schedule {
  lr: number;
  type: LrSchedulerType;
  /** Optimizer steps of linear warmup (0 = none). */
  warmupSteps: number;
  /** Total optimizer steps of the run (the decay reaches its end here). */
  totalSteps: number;
  /** Cosine floor as a fraction of lr (default 0). */
  minLrRatio?: number;
}

/** The learning rate of 0-based optimizer step `step`. */
export function lrAt(step: number, s: Schedule): number {
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  if (s.type === "constant") return s.lr;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const progress = Math.min(1, (step - s.warmupSteps) / span);
  if (s.type === "linear") return s.lr * (1 - progress);
  const floor = s.minLrRatio ?? 0;
  return s.lr * (floor + (1 - floor) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** Warmup steps from HF's two knobs: `warmup_steps` wins when > 0, else ceil(ratio · total). */
export function warmupStepsOf(total: number, warmupSteps: number, warmupRatio: number): number {
  return warmupSteps > 0 ? warmupSteps : Math.ceil(warmupRatio * total);
}
