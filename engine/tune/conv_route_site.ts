/**
 * A convolution pass's route as a tuning site: a spatial convolution's forward and grad input can run as a
 * channels-last GEMM (`engine/ops/conv_channels_last.ts`: a vec4 channels-last copy of the input, then
 * contraction over taps × channels) or as an implicit-im2col GEMM over NCHW. The kernel strategy's heuristic
 * picks channels-last on register tilings (measured on llvmpipe); the tuner times both on the adapter, each
 * pass run whole on scratch tensors (its GEMMs on their current choices).
 *
 * @module
 */
import { gpu } from "../gpu.ts";
import { empty, type Tensor } from "../tensor.ts";
import type { TuneSite } from "./tuner.ts";
import type { ConvGeometry } from "../ops/conv_common.ts";

/** The two routes. */
export type ConvRoute = "channels-last" | "im2col";

/** A pass on explicit tensors: forward (y, x, w) or grad input (dx, dy, w), in its op's argument order. */
export type ConvPassInto<G> = (out: Tensor, input: Tensor, w: Tensor, g: G) => void;

let forced: ConvRoute | null = null;

/**
 * The route of `pass` for geometry `g`: `heuristic` unless the tuner has measured otherwise (or, while the
 * tuner times this site, the route being timed). `run` is the pass itself, called on scratch tensors.
 */
export function tunedConvRoute<G extends ConvGeometry>(
  pass: "forward" | "gradInput",
  g: G,
  heuristic: ConvRoute,
  run: ConvPassInto<G>,
): ConvRoute {
  if (forced) return forced;
  const tuner = gpu().tuner;
  if (!tuner.active) return heuristic;
  const geometry = `${g.C}→${g.O} ${g.KH}×${g.KW} s${g.stride} p${g.pad} ${g.H}×${g.W}`;
  const site: TuneSite = {
    key: `conv-route|${pass}|${gpu().kernels}|N${g.N} ${geometry}`,
    label: `conv2d.${pass} route ${geometry} N=${g.N}`,
    heuristic,
    candidates: ["channels-last", "im2col"],
    prepare() {
      const image = [g.N, g.C, g.H, g.W];
      const output = [g.N, g.O, g.OH, g.OW];
      const w = empty([g.O, g.C, g.KH, g.KW]);
      const [out, input] = pass === "forward" ? [empty(output), empty(image)] : [empty(image), empty(output)];
      return {
        record(route: string) {
          forced = route as ConvRoute;
          try {
            run(out, input, w, g);
          } finally {
            forced = null;
          }
        },
        dispose() {
          for (const t of [w, out, input]) t.dispose();
        },
      };
    },
  };
  return tuner.choose(site) as ConvRoute;
}

/** Forces every convolution's route (`null` restores tuned/heuristic choice); tests use it to check both. */
export function forceConvRoute(route: ConvRoute | null): void {
  forced = route;
}
