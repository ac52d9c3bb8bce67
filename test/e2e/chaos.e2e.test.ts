import { describe, expect, it } from "vitest"
import { formatSummary, runChaos } from "../../scripts/chaos.js"

describe("chaos (a small run of npm run chaos)", () => {
  it("faults, retries and a crash lose or double no stock and leave no order PENDING", async () => {
    const seed = Math.floor(Math.random() * 2 ** 31)
    const summary = await runChaos({ orders: 300, clients: 8, crashes: 1, seed })
    process.stdout.write(`${formatSummary(summary, seed)}\n`)
    expect(summary.problems).toEqual([])
    expect(summary.invariantOk).toBe(true)
    expect(summary.crashes).toBe(1)
    expect(summary.pending).toBe(0)
    expect(summary.faultsInjected).toBeGreaterThan(0)
    expect(summary.confirmed).toBeGreaterThan(100)
  }, 240_000)
})
