/**
 * WGSL builder of the training monitor: one invocation, recorded after each training step, that counts
 * the step, remembers the first step whose first value (the loss) is not finite, and stores the step's
 * values in a ring buffer, so a loop reads its metrics back only every few steps.
 *
 * State layout (u32 words): `[firstBad, counter, ring of value 0 (m words), ring of value 1 (m), …]`.
 * @module
 */

/** Shapes baked into a monitor kernel. */
export interface MonitorSpec {
  /** Ring length m (steps kept between two readbacks). */
  ring: number;
  /** Scalars recorded per step (bound at 0 … values − 1). */
  values: number;
  /** Ring slots per step (≥ values; slots past `values` are written 0). */
  slots: number;
}

/** Words of a monitor's state buffer. */
export function monitorWords(spec: Pick<MonitorSpec, "ring" | "slots">): number {
  return 2 + spec.ring * spec.slots;
}

/**
 * The monitor kernel's body: it reads scalar k from the binding `v{k}` (f32, k < values) and updates the
 * binding `state` (u32, read_write), both declared by the dispatch.
 */
export function monitorBody(spec: MonitorSpec): string {
  const { ring: m, values, slots } = spec;
  const stores = Array.from(
    { length: slots },
    (_, k) => `  state[${2 + k * m}u + slot] = ${k < values ? `bitcast<u32>(v${k}[0])` : "0u"};`,
  );
  return `@compute @workgroup_size(1)
fn main() {
  let s = state[1] + 1u;
  state[1] = s;
  let bits = bitcast<u32>(v0[0]);
  if ((bits & 0x7f800000u) == 0x7f800000u && state[0] == 0u) { state[0] = s; }
  let slot = (s - 1u) % ${m}u;
${stores.join("\n")}
}`;
}
