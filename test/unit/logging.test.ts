import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { vi } from "vitest"
import { LoggingLive } from "../../src/layers/Logging.js"

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve))

describe("JSON logging", () => {
  it("writes the lines of one event-loop turn in one write; an ERROR line at once", async () => {
    const writes: Array<string> = []
    const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
      writes.push(String(chunk))
      return true
    })
    try {
      await Effect.runPromise(
        Effect.all([
          Effect.logInfo("first").pipe(Effect.annotateLogs("orderId", "o-1")),
          Effect.logInfo("second")
        ]).pipe(Effect.provide(LoggingLive))
      )
      // still in the turn that logged them: nothing written yet (unless an earlier turn's flush ran)
      const before = writes.length
      await nextTurn()
      expect(writes.length).toBe(before + 1)
      const lines = (writes.at(-1) ?? "").trimEnd().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>)
      expect(lines.map((l) => [l["level"], l["message"]])).toEqual([["INFO", "first"], ["INFO", "second"]])
      expect(lines[0]?.["orderId"]).toBe("o-1")

      await Effect.runPromise(Effect.logError("broken").pipe(Effect.provide(LoggingLive)))
      const error = JSON.parse(writes.at(-1) ?? "{}") as Record<string, unknown>
      expect([error["level"], error["message"]]).toEqual(["ERROR", "broken"])
    } finally {
      spy.mockRestore()
    }
  })
})
