/// <reference lib="dom" />
/**
 * The page's entry (bundled to `dist/web/app.js` by `deno task web`): mounts the bounds calculator,
 * which needs no GPU, then opens the WebGPU device and mounts the panels that compute on it. Without
 * WebGPU the page says so, names what to enable, and the calculator still works.
 *
 * @module
 */
import { initDevice } from "../mod.ts";
import { mountAdapter } from "./adapter.ts";
import { mountBounds } from "./bounds.ts";
import { mountCifar } from "./cifar.ts";
import { mountFig1 } from "./fig1.ts";
import { mountFig6 } from "./fig6.ts";
import { $ } from "./ui.ts";

/** Shows the no-WebGPU notice with `reason` and disables the GPU panels. */
function noWebGpu(reason: string): void {
  const box = $("no-webgpu");
  $("no-webgpu-reason").textContent = reason;
  box.hidden = false;
  for (const el of document.querySelectorAll<HTMLElement>("[data-needs-gpu]")) {
    el.setAttribute("aria-disabled", "true");
    for (const c of el.querySelectorAll<HTMLButtonElement | HTMLInputElement>("button, input, select")) {
      c.disabled = true;
    }
  }
  $("adapter-name").textContent = "none";
}

async function main(): Promise<void> {
  $("js-status").hidden = true;
  mountBounds();
  const nav = navigator as Navigator & { gpu?: unknown };
  if (!nav.gpu) {
    noWebGpu("this browser exposes no navigator.gpu.");
  } else {
    try {
      await initDevice();
      mountAdapter();
      mountFig1();
      mountCifar();
      mountFig6();
    } catch (e) {
      console.error(e);
      noWebGpu(`the WebGPU device could not be opened: ${(e as Error).message}`);
    }
  }
  document.body.dataset.ready = "true";
}

main().catch((e) => {
  console.error(e);
  const status = document.getElementById("js-status");
  if (status) {
    status.hidden = false;
    status.textContent = `The page failed to start: ${(e as Error).message}`;
  }
  document.body.dataset.ready = "error";
});
