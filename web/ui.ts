/// <reference lib="dom" />
/**
 * Small helpers shared by the panels: element look-up, validated number inputs, and the pause/stop
 * gate a training loop awaits between steps.
 *
 * @module
 */

/** The element with id `id` (throws when the page lacks it). */
export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page element #${id} is missing`);
  return el as T;
}

/** Sets an element's text (for status lines, which are `aria-live` regions in the page). */
export function setText(el: HTMLElement, text: string): void {
  el.textContent = text;
}

/** The value of `<input id>` as a number, checked; throws an Error naming the field otherwise. */
export function numberInput(id: string, o: { int?: boolean; min?: number; max?: number } = {}): number {
  const el = $<HTMLInputElement>(id);
  const label = document.querySelector(`label[for="${id}"]`)?.textContent?.trim() ?? id;
  const v = Number(el.value.trim());
  const bad = el.value.trim() === "" || !Number.isFinite(v) || (o.int && !Number.isInteger(v)) ||
    (o.min !== undefined && v < o.min) || (o.max !== undefined && v > o.max);
  el.setAttribute("aria-invalid", bad ? "true" : "false");
  if (bad) {
    const range = [o.min !== undefined ? `≥ ${o.min}` : "", o.max !== undefined ? `≤ ${o.max}` : ""]
      .filter(Boolean).join(" and ");
    throw new Error(`${label}: expected ${o.int ? "an integer" : "a number"}${range ? " " + range : ""}`);
  }
  return v;
}

/** Thrown out of {@link PauseGate.frame} when the run was stopped (reset). */
export class RunStopped extends Error {
  constructor() {
    super("stopped");
  }
}

/**
 * Pause, resume and stop for a loop that awaits {@link PauseGate.frame} after each drawn step. The
 * pause button toggles its label and `aria-pressed`.
 */
export class PauseGate {
  #paused = false;
  #stopped = false;
  #wake: (() => void) | null = null;

  /**
   * @param button the pause/resume button (its clicks toggle the gate; it carries `data-held="true"` while
   *   the loop is actually held, which is one frame after the click at most)
   * @param onHold called when the loop is held (true) and when it goes on (false)
   */
  constructor(readonly button?: HTMLButtonElement, readonly onHold?: (held: boolean) => void) {
    button?.addEventListener("click", () => (this.#paused ? this.resume() : this.pause()));
  }

  /** Whether the loop is held. */
  get paused(): boolean {
    return this.#paused;
  }

  /** Holds the loop at its next frame. */
  pause(): void {
    this.#paused = true;
    this.#label();
  }

  /** Lets the loop go on. */
  resume(): void {
    this.#paused = false;
    this.#label();
    this.#wake?.();
  }

  /** Ends the loop at its next frame (it throws {@link RunStopped}). */
  stop(): void {
    this.#stopped = true;
    this.#wake?.();
  }

  /** Clears pause and stop for a new run. */
  reset(): void {
    this.#paused = false;
    this.#stopped = false;
    this.#label();
  }

  /** Yields to the browser (so it paints), then waits while paused; throws when stopped. */
  async frame(): Promise<void> {
    await new Promise((r) => setTimeout(r, 0));
    if (this.#paused && !this.#stopped) {
      if (this.button) this.button.dataset.held = "true";
      this.onHold?.(true);
      while (this.#paused && !this.#stopped) await new Promise<void>((r) => (this.#wake = r));
      if (this.button) delete this.button.dataset.held;
      this.onHold?.(false);
    }
    this.#wake = null;
    if (this.#stopped) throw new RunStopped();
  }

  #label(): void {
    if (!this.button) return;
    this.button.textContent = this.#paused ? "Resume" : "Pause";
    this.button.setAttribute("aria-pressed", String(this.#paused));
  }
}

let gpuHolder: string | null = null;

/**
 * Takes the page's one GPU job slot for `name`, or returns the name of the panel that holds it. The
 * engine's tensor scopes are a stack, so two panels' loops interleaving at their awaits (one of them
 * paused inside a scope, say) would free each other's tensors: one panel computes at a time.
 */
export function acquireGpu(name: string): string | null {
  if (gpuHolder !== null && gpuHolder !== name) return gpuHolder;
  gpuHolder = name;
  return null;
}

/** Gives the slot back (only its holder does). */
export function releaseGpu(name: string): void {
  if (gpuHolder === name) gpuHolder = null;
}

/**
 * Wires a panel's run controls: submitting the form starts `run` unless one is running; reset stops a run
 * (through its gate) or, when idle, clears the panel. Then clears it and enables start.
 */
export function wireRunControls(c: {
  form: HTMLFormElement;
  reset: HTMLElement;
  start: HTMLButtonElement;
  status: HTMLElement;
  gate: PauseGate;
  isRunning: () => boolean;
  run: () => unknown;
  clear: () => void;
}): void {
  c.form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!c.isRunning()) c.run();
  });
  c.reset.addEventListener("click", () => {
    if (c.isRunning()) c.gate.stop();
    else {
      c.clear();
      setText(c.status, "reset");
    }
  });
  c.clear();
  c.start.disabled = false;
}
