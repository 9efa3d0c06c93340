/**
 * The stages of `deno task reproduce`, by name.
 * @module
 */
import type { StageFn, StageName } from "../stage.ts";
import { theoryStage } from "./theory.ts";
import { fig1Stage } from "./fig1.ts";
import { fig4Stage } from "./fig4.ts";
import { fig5Stage } from "./fig5.ts";
import { fig6Stage } from "./fig6.ts";
import { section5Stage } from "./section5.ts";
import { randomLabelsStage } from "./random_labels.ts";

export { fig1Stage, fig4Stage, fig5Stage, fig6Stage, randomLabelsStage, section5Stage, theoryStage };

/** The default stage implementations. */
export const DEFAULT_STAGES: Record<StageName, StageFn> = {
  theory: theoryStage,
  fig1: fig1Stage,
  fig4: fig4Stage,
  fig5: fig5Stage,
  fig6: fig6Stage,
  section5: section5Stage,
  randomLabels: randomLabelsStage,
};
