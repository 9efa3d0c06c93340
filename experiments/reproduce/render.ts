/**
 * The markdown report of `deno task reproduce`: verdict, the stage table, each stage's section (its own
 * renderer), the failing required checks and the list of files.
 * @module
 */
import { fmtSeconds, isFailure, MarkdownReport, mdTable, verdictCell } from "../report.ts";
import { reproduceArgs, type ReproduceConfig } from "./plan.ts";
import type { ReproduceSummary } from "./run.ts";
import { rel, type StageBody, type StageName } from "./stage.ts";

/** The stage table: status, time, required checks and folder of every stage. */
function stageRows(s: ReproduceSummary): string[][] {
  return s.stages.map((x) => {
    const cs = s.checks.filter((c) => c.section === x.name && c.required);
    return [
      x.title,
      x.status === "ok" ? "ok" : x.status === "skipped" ? `skipped (${x.note})` : `**error**: ${x.note}`,
      x.status === "skipped" ? "—" : fmtSeconds(x.seconds),
      cs.length ? `${cs.filter((c) => !isFailure(c)).length}/${cs.length}` : "—",
      x.status === "skipped" ? "—" : `[${rel(s.out, x.dir)}/](${rel(s.out, x.dir)}/)`,
    ];
  });
}

/** The report text of a finished run. */
export function renderReport(
  s: ReproduceSummary,
  bodies: Partial<Record<StageName, StageBody>>,
  cfg: ReproduceConfig,
): string {
  const r = new MarkdownReport('Reproduction of "Dissecting Supervised Contrastive Learning" (ICML 2021)');
  const req = s.checks.filter((c) => c.required);
  const crashed = s.stages.filter((x) => x.status === "error");
  r.paragraph(
    `**${s.pass ? "PASS" : "FAIL"}**: ${
      req.length - s.failures.length
    } of ${req.length} required checks match` +
      (s.failures.length ? ` (failing: ${s.failures.map((f) => `\`${f}\``).join(", ")})` : "") +
      (crashed.length ? `; crashed stages: ${crashed.map((x) => x.name).join(", ")}` : "") +
      `. Mode \`${s.mode}\`, ${fmtSeconds(s.seconds)}, started ${s.started}, adapter ${
        s.adapter ?? "none"
      }, Deno ${Deno.version.deno}.`,
  );
  r.paragraph(
    "Every number is shown next to the paper's with a verdict: *matches* (with the tolerance used) or *differs* " +
      "(with the reason). Required checks (theory values and the Section 3 simulations against their theorems) " +
      "fail the command; Section 5 numbers of a reduced run are reported only.",
  );
  r.paragraph(`Command: \`deno task reproduce ${reproduceArgs(cfg).join(" ")}\``.replace(/ `$/, "`"));
  r.table(["Stage", "Status", "Time", "Required checks", "Folder"], stageRows(s));
  let n = 0;
  for (const x of s.stages) {
    if (x.status === "skipped") continue;
    n++;
    r.heading(2, `${n}. ${x.title}`);
    const body = bodies[x.name];
    if (!body) {
      r.paragraph(`**This stage crashed** after ${fmtSeconds(x.seconds)}: \`${x.note ?? "unknown error"}\``);
      continue;
    }
    body.render(r, s.out);
  }
  if (s.failures.length) {
    r.heading(2, "Failing required checks");
    r.paragraph(mdTable(
      ["Check", "Paper", "Ours", "Verdict"],
      s.checks.filter(isFailure).map((c) => [`${c.id}: ${c.quantity}`, c.paper, c.ours, verdictCell(c)]),
    ));
  }
  r.heading(2, "Files");
  r.bullets([
    "`summary.json`: every check (id, paper, ours, verdict, reason, required) and each stage's own summary",
    "`config.json`: the options and the plan of this run",
    "each stage's folder: its CSVs, figures (SVG and PNG), config.json and summary.json",
  ]);
  return r.render();
}
