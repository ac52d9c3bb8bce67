/**
 * Keeps `npm run bench` working: runs it with `--smoke` (1 s per scenario, 1 round, a small soak)
 * and checks that it measured every scenario. Budgets are not asserted here: they are for real
 * runs on a quiet machine, not for a test sharing two cores with other suites.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { Schema } from "effect"
import { afterAll, describe, expect, it } from "vitest"

const ROOT = resolve(import.meta.dirname, "..")

const Results = Schema.Struct({
  summaries: Schema.Array(
    Schema.Struct({
      scenario: Schema.String,
      target: Schema.Literal("product", "baseline"),
      okPerSecond: Schema.Number,
      non2xx: Schema.Number,
      errors: Schema.Number
    })
  ),
  budgets: Schema.Array(Schema.Struct({ name: Schema.String, status: Schema.Literal("PASS", "FAIL", "SKIP") })),
  soak: Schema.Struct({ samples: Schema.Array(Schema.Struct({ orders: Schema.Number, heapUsedAfterGcMB: Schema.Number })) })
})

const SCENARIOS = ["1-line@32", "5-line@32", "1-line@1", "5-line@1", "replay@32", "get-order@32"]
const POSTS = SCENARIOS.filter((s) => s !== "get-order@32")

describe("npm run bench -- --smoke", () => {
  const dir = mkdtempSync(join(tmpdir(), "bench-smoke-"))
  let child: ChildProcess | undefined
  afterAll(() => {
    if (child !== undefined && child.exitCode === null) child.kill("SIGTERM")
    rmSync(dir, { recursive: true, force: true })
  })

  it("measures every scenario on the product and the baseline, with no failed POST", async () => {
    const out = join(dir, "results.json")
    child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "scripts", "bench.ts"), "--smoke", "--out", out], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout?.on("data", (d: Buffer) => (output += d.toString()))
    child.stderr?.on("data", (d: Buffer) => (output += d.toString()))
    const code = await new Promise<number | null>((r) => child?.once("exit", (c) => r(c)))
    expect(code, output).toBe(0)

    const results = Schema.decodeUnknownSync(Schema.parseJson(Results))(readFileSync(out, "utf8"))
    for (const target of ["product", "baseline"]) {
      for (const scenario of SCENARIOS) {
        const summary = results.summaries.find((s) => s.scenario === scenario && s.target === target)
        expect(summary, `${scenario} on the ${target}`).toBeDefined()
        expect(summary?.okPerSecond, `${scenario} on the ${target}: orders/s`).toBeGreaterThan(0)
        if (POSTS.includes(scenario)) {
          expect(summary?.non2xx, `${scenario} on the ${target}: non-2xx\n${output}`).toBe(0)
          expect(summary?.errors, `${scenario} on the ${target}: errors\n${output}`).toBe(0)
        }
      }
    }
    expect(results.budgets.map((b) => b.name)).toHaveLength(5)
    expect(results.soak.samples.length).toBeGreaterThanOrEqual(2)
    expect(output).toMatch(/budgets/)
  }, 150_000)
})
