/**
 * Summaries, budgets and the printed table of a bench run.
 */
import type { Latency } from "./load.js"

/** Which server a run drove. */
export type Target = "product" | "baseline"

/** One load run of one scenario against one target, with what the bench saw of the process. */
export interface RunRecord {
  readonly scenario: string
  readonly target: Target
  readonly round: number
  readonly connections: number
  readonly ok: number
  readonly non2xx: number
  readonly errors: number
  readonly durationSeconds: number
  readonly okPerSecond: number
  readonly latency: Latency
  readonly statusCodes: Record<string, number>
  /** Highest VmRSS sampled every 100 ms during the run, in MB (10^6 bytes). */
  readonly peakRssMB: number
  /** CPU time of the target process per 2xx response, in ms. */
  readonly cpuMsPerOk: number
  /** CPU use of the fake inventory during the run, in % of one core. */
  readonly inventoryCpuPercent: number
}

/** The medians over rounds of one scenario on one target. */
export interface Summary {
  readonly scenario: string
  readonly target: Target
  readonly rounds: number
  readonly okPerSecond: number
  readonly p50: number
  readonly p99: number
  /** Highest of the rounds. */
  readonly max: number
  /** Sum over the rounds. */
  readonly non2xx: number
  /** Sum over the rounds. */
  readonly errors: number
  /** Highest of the rounds. */
  readonly peakRssMB: number
  readonly cpuMsPerOk: number
  readonly inventoryCpuPercent: number
}

/** Product over baseline, of the medians. */
export interface Ratio {
  readonly scenario: string
  readonly okPerSecond: number
  readonly p50: number
  readonly p99: number
  readonly cpuMsPerOk: number
}

/** A budget's verdict. */
export interface Budget {
  readonly name: string
  readonly status: "PASS" | "FAIL" | "SKIP"
  /** What was measured, against what limit. */
  readonly detail: string
}

/** The median of `values` (the mean of the middle two for an even count); 0 for none. */
export const median = (values: ReadonlyArray<number>): number => {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  const upper = sorted[mid] ?? 0
  return sorted.length % 2 === 1 ? upper : ((sorted[mid - 1] ?? upper) + upper) / 2
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits

/** Medians per scenario and target, in the order the scenarios first ran. */
export const summarise = (runs: ReadonlyArray<RunRecord>): Array<Summary> => {
  const groups = new Map<string, Array<RunRecord>>()
  for (const run of runs) {
    const key = `${run.scenario}\u0000${run.target}`
    const group = groups.get(key) ?? []
    group.push(run)
    groups.set(key, group)
  }
  return [...groups.values()].flatMap((group) => {
    const first = group[0]
    if (first === undefined) return []
    return [
      {
        scenario: first.scenario,
        target: first.target,
        rounds: group.length,
        okPerSecond: round(median(group.map((r) => r.okPerSecond)), 1),
        p50: round(median(group.map((r) => r.latency.p50))),
        p99: round(median(group.map((r) => r.latency.p99))),
        max: round(Math.max(...group.map((r) => r.latency.max))),
        non2xx: group.reduce((n, r) => n + r.non2xx, 0),
        errors: group.reduce((n, r) => n + r.errors, 0),
        peakRssMB: round(Math.max(...group.map((r) => r.peakRssMB)), 1),
        cpuMsPerOk: round(median(group.map((r) => r.cpuMsPerOk)), 3),
        inventoryCpuPercent: round(median(group.map((r) => r.inventoryCpuPercent)), 0)
      }
    ]
  })
}

/** Product/baseline of the medians, for every scenario both ran. */
export const ratios = (summaries: ReadonlyArray<Summary>): Array<Ratio> =>
  summaries.flatMap((product) => {
    if (product.target !== "product") return []
    const baseline = summaries.find((s) => s.scenario === product.scenario && s.target === "baseline")
    if (baseline === undefined) return []
    const of = (a: number, b: number) => (b === 0 ? 0 : round(a / b))
    return [
      {
        scenario: product.scenario,
        okPerSecond: of(product.okPerSecond, baseline.okPerSecond),
        p50: of(product.p50, baseline.p50),
        p99: of(product.p99, baseline.p99),
        cpuMsPerOk: of(product.cpuMsPerOk, baseline.cpuMsPerOk)
      }
    ]
  })

/** Inputs of the budgets that do not come from the scenario table. */
export interface BudgetInputs {
  /** The product api's highest resident memory over its life (VmHWM), MB; undefined when not measured. */
  readonly productPeakRssMB: number | undefined
  /** The soak's verdict on heap growth; undefined when no soak ran. */
  readonly soak: { readonly flat: boolean; readonly detail: string } | undefined
}

/**
 * The budgets: product orders/s >= 0.6x baseline (1-line@32); product p99 <= 2x baseline
 * p99 (1-line@32); product 5-line p50 <= 1.5x 1-line p50 at 1 connection; api RSS <= 200 MB; heap
 * flat over the soak. A budget whose figures were not measured in this run is SKIP.
 */
export const checkBudgets = (summaries: ReadonlyArray<Summary>, inputs: BudgetInputs): Array<Budget> => {
  const find = (scenario: string, target: Target) => summaries.find((s) => s.scenario === scenario && s.target === target)
  const budgets: Array<Budget> = []
  const p1 = find("1-line@32", "product")
  const b1 = find("1-line@32", "baseline")
  if (p1 !== undefined && b1 !== undefined && b1.okPerSecond > 0 && b1.p99 > 0) {
    const throughput = p1.okPerSecond / b1.okPerSecond
    budgets.push({
      name: "orders/s 1-line@32 >= 0.6x baseline",
      status: throughput >= 0.6 ? "PASS" : "FAIL",
      detail: `${p1.okPerSecond} / ${b1.okPerSecond} = ${throughput.toFixed(2)}x (aim 0.8x)`
    })
    const tail = p1.p99 / b1.p99
    budgets.push({
      name: "p99 1-line@32 <= 2x baseline",
      status: tail <= 2 ? "PASS" : "FAIL",
      detail: `${p1.p99} ms / ${b1.p99} ms = ${tail.toFixed(2)}x`
    })
  } else {
    budgets.push({ name: "orders/s 1-line@32 >= 0.6x baseline", status: "SKIP", detail: "not measured in this run" })
    budgets.push({ name: "p99 1-line@32 <= 2x baseline", status: "SKIP", detail: "not measured in this run" })
  }
  const one = find("1-line@1", "product")
  const five = find("5-line@1", "product")
  if (one !== undefined && five !== undefined && one.p50 > 0) {
    const factor = five.p50 / one.p50
    budgets.push({
      name: "5-line p50 @1 <= 1.5x 1-line p50 @1",
      status: factor <= 1.5 ? "PASS" : "FAIL",
      detail: `${five.p50} ms / ${one.p50} ms = ${factor.toFixed(2)}x`
    })
  } else {
    budgets.push({ name: "5-line p50 @1 <= 1.5x 1-line p50 @1", status: "SKIP", detail: "not measured in this run" })
  }
  budgets.push(
    inputs.productPeakRssMB === undefined
      ? { name: "api RSS <= 200 MB", status: "SKIP", detail: "not measured" }
      : {
          name: "api RSS <= 200 MB",
          status: inputs.productPeakRssMB <= 200 ? "PASS" : "FAIL",
          detail: `peak ${inputs.productPeakRssMB.toFixed(1)} MB over the api's life (VmHWM)`
        }
  )
  budgets.push(
    inputs.soak === undefined
      ? { name: "heap flat over the soak", status: "SKIP", detail: "run with --soak" }
      : { name: "heap flat over the soak", status: inputs.soak.flat ? "PASS" : "FAIL", detail: inputs.soak.detail }
  )
  return budgets
}

const pad = (text: string, width: number, right = false) => (right ? text.padStart(width) : text.padEnd(width))

/** A plain-text table: the first row is the header; columns after the first `leftColumns` are right-aligned. */
export const table = (rows: ReadonlyArray<ReadonlyArray<string>>, leftColumns = 2): string => {
  const widths: Array<number> = []
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)))
  const line = (row: ReadonlyArray<string>) => row.map((cell, i) => pad(cell, widths[i] ?? 0, i >= leftColumns)).join("  ")
  const [header, ...body] = rows
  if (header === undefined) return ""
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n")
}

/** The scenario table: medians per scenario and target. */
export const summaryTable = (summaries: ReadonlyArray<Summary>): string =>
  table([
    ["scenario", "target", "orders/s", "p50 ms", "p99 ms", "max ms", "non-2xx", "errors", "peak RSS MB", "CPU ms/order", "inventory CPU %"],
    ...summaries.map((s) => [
      s.scenario,
      s.target,
      s.okPerSecond.toFixed(1),
      s.p50.toFixed(2),
      s.p99.toFixed(2),
      s.max.toFixed(1),
      String(s.non2xx),
      String(s.errors),
      s.peakRssMB.toFixed(1),
      s.cpuMsPerOk.toFixed(3),
      String(s.inventoryCpuPercent)
    ])
  ])

/** The ratio table: product/baseline of the medians. */
export const ratioTable = (rs: ReadonlyArray<Ratio>): string =>
  table(
    [
      ["scenario", "orders/s", "p50", "p99", "CPU/order"],
      ...rs.map((r) => [r.scenario, `${r.okPerSecond.toFixed(2)}x`, `${r.p50.toFixed(2)}x`, `${r.p99.toFixed(2)}x`, `${r.cpuMsPerOk.toFixed(2)}x`])
    ],
    1
  )

/** The budgets, one per line: `PASS  name  (detail)`. */
export const budgetLines = (budgets: ReadonlyArray<Budget>): string =>
  budgets.map((b) => `${b.status.padEnd(4)}  ${b.name.padEnd(40)}  ${b.detail}`).join("\n")
