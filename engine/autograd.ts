/**
 * Reverse-mode autodiff over the DAG of recorded ops.
 *
 * Each op records a node with its inputs and a backward closure written right beside its forward
 * (in `ops/`). `backward()` orders the graph topologically once (ResNet skips and the SC loss reuse
 * tensors, so per-path recursion would repeat work), then walks it in reverse, summing gradients that
 * meet at a tensor. Backward closures run with recording off.
 */
import { type BackwardOptions, empty, ShapeError, Tensor, untrack } from "./tensor.ts";
import { addInto, addSame, fill } from "./ops/core.ts";

/** One recorded op: its inputs and the rule mapping the output gradient to input gradients. */
export interface GradNode {
  /** Op name, e.g. `conv2d`. */
  name: string;
  /** Inputs in the order `backward` returns their gradients. */
  inputs: Tensor[];
  /** Gradients for each input (null where an input needs none). Runs with recording off. */
  backward: (gradOutput: Tensor) => (Tensor | null | undefined)[];
}

let gradEnabled = true;

/** Whether ops currently record autograd nodes. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording autograd nodes (evaluation, optimiser updates). */
export function noGrad<T>(fn: () => T): T {
  const previous = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

/**
 * Attaches an autograd node to `output` when recording is on and some input requires grad.
 * Ops call this right after recording their forward dispatch; returns `output`.
 */
export function record(
  name: string,
  inputs: Tensor[],
  output: Tensor,
  backward: (gradOutput: Tensor) => (Tensor | null | undefined)[],
): Tensor {
  if (gradEnabled && inputs.some((t) => t.requiresGrad)) {
    output.requiresGrad = true;
    output.node = { name, inputs, backward };
  }
  return output;
}

function topologicalOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, next] = top;
    const inputs = t.node?.inputs ?? [];
    if (next < inputs.length) {
      top[1]++;
      const input = inputs[next];
      if (input.requiresGrad && !visited.has(input)) {
        visited.add(input);
        stack.push([input, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order; // inputs before the tensors computed from them
}

/** Reverse-mode autodiff from `root` (what `Tensor#backward` runs); `seed` defaults to 1 for a scalar. */
export function backward(root: Tensor, seed?: Tensor, options: BackwardOptions = {}): void {
  if (!root.requiresGrad) {
    throw new ShapeError("backward", `${root} does not require grad (no input of it has requiresGrad)`);
  }
  if (!seed && root.size !== 1) {
    throw new ShapeError("backward", `needs a gradient argument for non-scalar ${root}`);
  }
  if (seed && seed.size !== root.size) {
    throw new ShapeError("backward", `gradient of ${seed} does not match ${root}`);
  }
  const order = topologicalOrder(root);
  const grads = new Map<Tensor, Tensor>();
  const seen = new Set<Tensor>();
  // Gradient tensors are owned by the map; one tensor returned for two inputs is aliased, not shared.
  const own = (g: Tensor): Tensor => {
    if (seen.has(g)) return g.detach();
    seen.add(g);
    return g;
  };
  const previous = gradEnabled;
  gradEnabled = false;
  try {
    grads.set(root, own(seed ? seed.detach() : fill(root.shape, 1)));
    for (let k = order.length - 1; k >= 0; k--) {
      const t = order[k];
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      if (!t.node) {
        accumulateLeaf(t, g);
        continue;
      }
      const inputGrads = t.node.backward(g);
      // Every node that reads t (its consumers, and t's own rule) has run: t's data is dead to the graph.
      if (options.releaseIntermediates && t !== root) t.releaseData();
      t.node.inputs.forEach((input, i) => {
        const gi = inputGrads[i];
        if (!gi || !input.requiresGrad) {
          if (gi && gi !== g) gi.dispose();
          return;
        }
        if (gi.size !== input.size) {
          throw new ShapeError(`${t.node!.name}.backward`, `gradient ${gi} for input ${input}`);
        }
        const existing = grads.get(input);
        if (existing && (isSlot(input, existing) || isSlot(input, gi))) {
          // One of the two went straight into the parameter's optimiser slot (`gradTarget`): sum there.
          const [slot, other] = isSlot(input, existing) ? [existing, gi] : [gi, existing];
          addInto(slot, other);
          grads.set(input, slot);
          if (other !== g) other.dispose();
        } else if (existing && existing.storage.refs === 1 && gi.storage !== existing.storage) {
          // Sole owner of the partial sum: add in place (one activation-sized buffer fewer where a
          // ResNet's skip and residual branches meet; same operands and order, same bits).
          addInto(existing, gi);
          if (gi !== g) gi.dispose();
        } else if (existing) {
          grads.set(input, own(addSame(existing, gi)));
          existing.dispose();
          if (gi !== g) gi.dispose();
        } else {
          grads.set(input, own(gi === g ? g.detach() : gi));
        }
      });
      g.dispose();
    }
  } finally {
    gradEnabled = previous;
    for (const t of order) if (t.node) t.node = null; // free the graph (no retain_graph)
  }
}

/**
 * Where a backward rule should write the gradient of input `t`: a parameter's zeroed optimiser slot when
 * this is the first gradient it receives since `zeroGrad()` (it is then accumulated already, and
 * `backward` leaves it in place), else a fresh tensor. The rule must overwrite every element.
 */
export function gradTarget(t: Tensor): Tensor {
  if (t.gradSink && !t.node && t.requiresGrad && t.gradSink.grad.size === t.size) {
    const slot = t.gradSink.takeFresh();
    if (slot) return slot;
  }
  return empty(t.shape);
}

/** Whether `g` is (a view of exactly) the gradient sink of `leaf`. */
function isSlot(leaf: Tensor, g: Tensor): boolean {
  const slot = leaf.gradSink?.grad;
  return slot !== undefined && g.storage === slot.storage && g.elementOffset === slot.elementOffset &&
    g.size === slot.size;
}

function accumulateLeaf(leaf: Tensor, g: Tensor): void {
  const sink = leaf.gradSink;
  if (isSlot(leaf, g)) {
    if (g !== sink!.grad) g.dispose(); // a detached alias; the slot itself stays
    return;
  }
  if (sink) {
    sink.markUsed();
    addInto(sink.grad, g);
    g.dispose();
  } else if (leaf.grad) {
    leaf.grad = addSame(leaf.grad, g);
    g.dispose();
  } else {
    leaf.grad = untrack(g.shape.join() === leaf.shape.join() ? g : reshapeAlias(g, leaf));
  }
}

function reshapeAlias(g: Tensor, like: Tensor): Tensor {
  const t = new Tensor(like.shape, g.dtype, g.storage.retain(), g.elementOffset);
  g.dispose();
  return t;
}
