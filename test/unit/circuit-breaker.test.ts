import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, TestClock } from "effect"
import { makeCircuitBreaker, withCircuitBreaker } from "../../src/services/CircuitBreaker.js"
import {
  InsufficientOnHand,
  type InventoryClientService,
  InventoryBusy,
  InventoryTimeout,
  InventoryUnavailable
} from "../../src/services/InventoryClient.js"
import { Option } from "effect"
import { BookId } from "../../src/domain/Ids.js"

const breaker = makeCircuitBreaker({ failureThreshold: 3, cooldown: Duration.seconds(10) })

describe("CircuitBreaker", () => {
  it.effect("closed -> open after N consecutive failures; a success in between resets the count", () =>
    Effect.gen(function* () {
      const b = yield* breaker
      yield* b.record("failure")
      yield* b.record("failure")
      yield* b.record("success")
      yield* b.record("failure")
      yield* b.record("failure")
      expect(yield* b.snapshot).toEqual({ state: "closed", consecutiveFailures: 2 })
      expect(yield* Effect.exit(b.guard)).toEqual(Exit.void)
      yield* b.record("failure")
      expect((yield* b.snapshot).state).toBe("open")
      const rejected = yield* Effect.flip(b.guard)
      expect(rejected).toMatchObject({ _tag: "UpstreamUnavailable", retryAfterSeconds: 10 })
    }))

  it.effect("open -> half open after the cool-down: one trial at a time; its success closes, its failure reopens", () =>
    Effect.gen(function* () {
      const b = yield* breaker
      for (let i = 0; i < 3; i++) yield* b.record("failure")
      yield* TestClock.adjust(Duration.seconds(4))
      expect(yield* Effect.flip(b.guard)).toMatchObject({ retryAfterSeconds: 6 })
      yield* TestClock.adjust(Duration.seconds(6))
      expect(yield* Effect.exit(b.guard)).toEqual(Exit.void) // the trial
      expect((yield* b.snapshot).state).toBe("half_open")
      expect(yield* Effect.flip(b.guard)).toMatchObject({ _tag: "UpstreamUnavailable" }) // a second order waits
      yield* b.record("failure")
      expect((yield* b.snapshot).state).toBe("open")
      yield* TestClock.adjust(Duration.seconds(10))
      expect(yield* Effect.exit(b.guard)).toEqual(Exit.void)
      yield* b.record("success")
      expect(yield* b.snapshot).toEqual({ state: "closed", consecutiveFailures: 0 })
      expect(yield* Effect.exit(b.guard)).toEqual(Exit.void)
    }))

  it.effect("the decorated client counts 5xx/timeouts as failures, 4xx answers as successes, a full bulkhead as neither", () =>
    Effect.gen(function* () {
      const b = yield* breaker
      const failures: Array<InventoryUnavailable | InventoryTimeout | InventoryBusy> = [
        new InventoryUnavailable({ reason: "503" }),
        new InventoryBusy({ reason: "full" }),
        new InventoryTimeout({ reason: "slow" })
      ]
      const client: InventoryClientService = {
        getStock: () => {
          const next = failures.shift()
          return next === undefined ? Effect.die("no more") : Effect.fail(next)
        },
        adjust: (bookId) => Effect.fail(new InsufficientOnHand({ bookId, detail: "negative" })),
        findAdjustment: () => Effect.succeed(Option.none())
      }
      const observed = withCircuitBreaker(client, b)
      const id = BookId.make("11111111-1111-4111-8111-111111111111")
      yield* Effect.exit(observed.getStock(id))
      expect((yield* b.snapshot).consecutiveFailures).toBe(1)
      yield* Effect.exit(observed.getStock(id))
      expect((yield* b.snapshot).consecutiveFailures).toBe(1) // busy: neither
      yield* Effect.exit(observed.getStock(id))
      expect((yield* b.snapshot).consecutiveFailures).toBe(2)
      yield* Effect.exit(observed.adjust(id, -1, "n"))
      expect((yield* b.snapshot).consecutiveFailures).toBe(0) // it answered
    }))
})
