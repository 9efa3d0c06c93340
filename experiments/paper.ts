/**
 * Every number "Dissecting Supervised Contrastive Learning" (Graf et al., ICML 2021) reports, in one
 * place: the figure scripts, `geometry`, `reproduce` and its report import them from here.
 *
 * Settings the paper states (Section 5.1) are in {@link PAPER_TRAINING}; values it only draws (Figs. 2,
 * 4, 5, 8, the γ histograms of Fig. 7) have no entry.
 * @module
 */

/** The loss values printed above the panels of Fig. 1 (left → right; SC mean per anchor, CE + λ‖W‖²). */
export const PAPER_FIG1 = {
  sc: [9.029, 8.8, 7.513, 4.608, 4.598, 4.596],
  ce: [1.322, 1.015, 0.867, 0.71, 0.499, 0.265],
} as const;

/** Fig. 6: the minimised mean SC loss over all 167,960 multisets against Theorem 2. */
export const PAPER_FIG6 = {
  empirical: 12.12016,
  theory: 12.12015,
  batches: 167960,
  setting: "K = 3, 4 points per class on S¹ (N = 12), b = 9, ρ = 1; SGD with projection, 100k iterations",
} as const;

/** Theorem 2's mean over 𝔅 in the two settings the paper evaluates (Section 5.2 and Fig. 6). */
export const PAPER_THEORY = {
  scCifar10: { N: 50000, K: 10, b: 256, rho2: 10, mean: 824.487 },
  scFig6: {
    N: 12,
    K: 3,
    b: 9,
    rho2: 1,
    mean: PAPER_FIG6.theory,
    empirical: PAPER_FIG6.empirical,
    batches: PAPER_FIG6.batches,
  },
} as const;

/** Section 5.2 "Theory vs. Practice" (CIFAR-10, with augmentation; the 500k-iteration values too). */
export const PAPER_SECTION_5_2 = {
  sc: { theory: PAPER_THEORY.scCifar10.mean, empirical: 824.731, empirical500k: 824.523, batches: 1000 },
  ce: { theory: 7.64e-5, empirical: 2.48e-4, empirical500k: 2.27e-4 },
} as const;

/** Test errors (%) of the table of Fig. 7: ResNet-18, 100k iterations, with / without augmentation. */
export const PAPER_TEST_ERROR = {
  cifar10: { aug: { ce: 6.3, "ce-fix": 6.2, sc: 5.7 }, noAug: { ce: 16.4, "ce-fix": 14.7, sc: 13.8 } },
  cifar100: { aug: { ce: 27.0, "ce-fix": 26.3, sc: 24.9 }, noAug: { ce: 41.8, "ce-fix": 41.3, sc: 41.5 } },
} as const;

/** The training setting of Section 5.1 (ResNet-18 on CIFAR-10/100). */
export const PAPER_TRAINING = {
  trainImages: 50000,
  testImages: 10000,
  featureDim: 512,
  iterations: 100000,
  batch: 256,
  lr: 0.1,
  momentum: 0.9,
  weightDecay: 1e-4,
  tau: 0.1,
  probeIterations: 5000,
} as const;

/**
 * Section 5.3 (Figs. 2 and 8): the paper draws the time to fit and prints no number of it; what its text
 * states: the budget (100k iterations, the evaluation every 500 of FORMULAS.md's protocol) and, on CIFAR-10,
 * "SC cannot achieve zero error beyond 80% corruption" (the largest corruption SC fits is 0.8).
 */
export const PAPER_RANDOM_LABELS = {
  cap: PAPER_TRAINING.iterations,
  evalEvery: 500,
  probeIterations: 1000,
  scFitsUpTo: { cifar10: 0.8 },
  quotes: {
    scLimit: "This equally explains why, on CIFAR10, SC cannot achieve zero error beyond 80% corruption",
    growth: "On both datasets, CE and CE-fix show an approximately linear growth, while SC shows a " +
      "remarkably superlinear growth.",
  },
} as const;

/**
 * Section 5.2's conjecture on pre-activation ResNets (the paper reports no number for them): "We suspect
 * that architectures which do not implement the aforementioned non-negativity constraint in the encoder,
 * e.g., the pre-activation variants of ResNets (He et al., 2016b), are capable of separating the classes to
 * a larger extend and thus match the theoretical prediction more closely when trained on data with a small
 * number of classes."
 */
export const PAPER_PREACT_CONJECTURE =
  "pre-activation ResNets separate the class means further (closer to the simplex) on data with few " +
  "classes (Section 5.2; the paper reports no number)";
