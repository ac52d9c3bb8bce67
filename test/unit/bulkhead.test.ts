import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Either, Exit, Fiber, FiberId, Random, TestClock } from "effect"
import { type Bulkhead, makeBulkhead } from "../../src/services/Bulkhead.js"

const busy = () => "busy" as const

/** Lets every runnable fiber run until it blocks. */
const settle = Effect.repeatN(Effect.yieldNow(), 20)

/** A caller that holds one of `bulkhead`'s slots until `free` is run (which waits for it to end). */
const holdSlot = (bulkhead: Bulkhead) =>
  Effect.gen(function* () {
    const gate = yield* Deferred.make<void>()
    const holder = yield* Effect.fork(bulkhead.withSlot(Duration.seconds(10), busy)(Deferred.await(gate)))
    yield* settle
    return { free: Effect.zipRight(Deferred.succeed(gate, undefined), Fiber.join(holder)) }
  })

describe("Bulkhead", () => {
  it.effect("withSlotIfFree: runs onFull at once when no slot is free, and a slot comes back when its holder ends or is interrupted", () =>
    Effect.gen(function* () {
      const bulkhead = yield* makeBulkhead(1)
      const full = () => Effect.succeed("full" as const)
      const gate = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(bulkhead.withSlotIfFree(full)(Effect.as(Deferred.await(gate), "held" as const)))
      yield* settle
      expect(yield* bulkhead.withSlotIfFree(full)(Effect.succeed("ran" as const))).toBe("full")
      expect(yield* bulkhead.usage).toEqual({ inUse: 1, waiting: 0 })
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Fiber.join(holder)).toBe("held")
      expect(yield* bulkhead.withSlotIfFree(full)(Effect.succeed("ran" as const))).toBe("ran")
      // a holder that is interrupted gives its slot back too
      const stuck = yield* Effect.fork(bulkhead.withSlotIfFree(full)(Effect.never))
      yield* settle
      expect(yield* bulkhead.usage).toEqual({ inUse: 1, waiting: 0 })
      yield* Fiber.interrupt(stuck)
      expect(yield* bulkhead.usage).toEqual({ inUse: 0, waiting: 0 })
      expect(yield* bulkhead.withSlotIfFree(full)(Effect.succeed("ran" as const))).toBe("ran")
    }))

  it.effect("runs at most `slots` effects at once; the others start in arrival order as slots come free", () =>
    Effect.gen(function* () {
      const bulkhead = yield* makeBulkhead(2)
      const gates = yield* Effect.forEach([0, 1, 2, 3, 4], () => Deferred.make<void>())
      const started: Array<number> = []
      const fibers = yield* Effect.forEach(gates, (gate, i) =>
        Effect.fork(
          bulkhead.withSlot(Duration.seconds(10), busy)(
            Effect.zipRight(Effect.sync(() => started.push(i)), Deferred.await(gate))
          )
        )
      )
      yield* settle
      expect(started).toEqual([0, 1])
      expect(yield* bulkhead.usage).toEqual({ inUse: 2, waiting: 3 })
      yield* Deferred.succeed(gates[1]!, undefined)
      yield* Fiber.join(fibers[1]!)
      yield* settle
      expect(started).toEqual([0, 1, 2])
      yield* Deferred.succeed(gates[0]!, undefined)
      yield* Deferred.succeed(gates[2]!, undefined)
      yield* Fiber.join(fibers[2]!)
      yield* settle
      expect(started).toEqual([0, 1, 2, 3, 4])
      yield* Effect.forEach(gates, (gate) => Deferred.succeed(gate, undefined))
      yield* Fiber.joinAll(fibers)
      expect(yield* bulkhead.usage).toEqual({ inUse: 0, waiting: 0 })
    }))

  it.effect("a caller that gets no slot within its wait fails with onBusy, never runs, and leaves the queue", () =>
    Effect.gen(function* () {
      const bulkhead = yield* makeBulkhead(1)
      const holder = yield* holdSlot(bulkhead)
      let ran = false
      const waiter = yield* Effect.fork(
        Effect.either(bulkhead.withSlot(Duration.millis(500), busy)(Effect.sync(() => (ran = true))))
      )
      yield* TestClock.adjust(Duration.millis(499))
      expect(waiter.unsafePoll()).toBeNull()
      yield* TestClock.adjust(Duration.millis(1))
      expect(yield* Fiber.join(waiter)).toEqual(Either.left("busy"))
      expect(ran).toBe(false)
      expect(yield* bulkhead.usage).toEqual({ inUse: 1, waiting: 0 })
      yield* holder.free
      expect(yield* bulkhead.usage).toEqual({ inUse: 0, waiting: 0 })
    }))

  it.effect("the wait ends at maxWait even where the caller cannot be interrupted (inside an acquire)", () =>
    Effect.gen(function* () {
      const bulkhead = yield* makeBulkhead(1)
      const holder = yield* holdSlot(bulkhead)
      const waiter = yield* Effect.fork(
        Effect.either(Effect.uninterruptible(bulkhead.withSlot(Duration.millis(500), busy)(Effect.succeed("ran"))))
      )
      yield* TestClock.adjust(Duration.millis(500))
      expect(yield* Fiber.join(waiter)).toEqual(Either.left("busy"))
      yield* holder.free
      expect(yield* bulkhead.usage).toEqual({ inUse: 0, waiting: 0 })
    }))

  it.effect("releases the slot when the effect fails, dies or is interrupted", () =>
    Effect.gen(function* () {
      const bulkhead = yield* makeBulkhead(1)
      expect(yield* Effect.either(bulkhead.withSlot(Duration.seconds(1), busy)(Effect.fail("boom" as const)))).toEqual(
        Either.left("boom")
      )
      expect(Exit.isFailure(yield* Effect.exit(bulkhead.withSlot(Duration.seconds(1), busy)(Effect.die("bug"))))).toBe(true)
      const hanging = yield* Effect.fork(bulkhead.withSlot(Duration.seconds(1), busy)(Effect.never))
      yield* Effect.yieldNow()
      expect(yield* bulkhead.usage).toEqual({ inUse: 1, waiting: 0 })
      yield* Fiber.interrupt(hanging)
      expect(yield* bulkhead.usage).toEqual({ inUse: 0, waiting: 0 })
    }))

  it.effect("a slot handed over as its waiter's deadline passes is not lost", () =>
    Effect.gen(function* () {
      const bulkhead = yield* makeBulkhead(1)
      // the holder's work and the waiter's deadline end at the same instant
      const holder = yield* Effect.fork(bulkhead.withSlot(Duration.seconds(10), busy)(Effect.sleep(Duration.millis(100))))
      yield* Effect.yieldNow()
      const waiter = yield* Effect.fork(Effect.either(bulkhead.withSlot(Duration.millis(100), busy)(Effect.succeed("ran"))))
      const third = yield* Effect.fork(bulkhead.withSlot(Duration.seconds(10), busy)(Effect.succeed("third ran")))
      yield* TestClock.adjust(Duration.millis(100))
      yield* Fiber.join(holder)
      const waited = yield* Fiber.join(waiter)
      expect(["ran", "busy"]).toContain(Either.merge(waited))
      expect(yield* Fiber.join(third)).toBe("third ran")
      expect(yield* bulkhead.usage).toEqual({ inUse: 0, waiting: 0 })
    }))

  it.effect("an interrupted waiter leaves the queue: the slot freed next goes to the waiter behind it", () =>
    Effect.gen(function* () {
      const bulkhead = yield* makeBulkhead(1)
      const holder = yield* holdSlot(bulkhead)
      let firstRan = false
      const first = yield* Effect.fork(bulkhead.withSlot(Duration.seconds(10), busy)(Effect.sync(() => (firstRan = true))))
      const second = yield* Effect.fork(bulkhead.withSlot(Duration.seconds(10), busy)(Effect.succeed("second ran")))
      yield* settle
      expect(yield* bulkhead.usage).toEqual({ inUse: 1, waiting: 2 })
      yield* Fiber.interrupt(first)
      expect(yield* bulkhead.usage).toEqual({ inUse: 1, waiting: 1 })
      yield* holder.free
      expect(yield* Fiber.join(second)).toBe("second ran")
      expect(firstRan).toBe(false)
      expect(yield* bulkhead.usage).toEqual({ inUse: 0, waiting: 0 })
    }))

  it.effect("a waiter interrupted just as the slot is handed to it passes the slot on", () =>
    Effect.gen(function* () {
      const bulkhead = yield* makeBulkhead(1)
      let waiterRan = false
      const { third, waiter } = yield* bulkhead.withSlot(Duration.seconds(10), busy)(
        Effect.gen(function* () {
          const waiter = yield* Effect.fork(bulkhead.withSlot(Duration.seconds(10), busy)(Effect.sync(() => (waiterRan = true))))
          const third = yield* Effect.fork(bulkhead.withSlot(Duration.seconds(10), busy)(Effect.succeed("third ran")))
          yield* settle
          expect(yield* bulkhead.usage).toEqual({ inUse: 1, waiting: 2 })
          // the interruption reaches the waiter's mailbox first; the hand-over follows at once, as this slot is released
          waiter.unsafeInterruptAsFork(FiberId.none)
          return { third, waiter }
        })
      )
      expect(Exit.isInterrupted(yield* Fiber.await(waiter))).toBe(true)
      expect(waiterRan).toBe(false)
      yield* settle
      expect(yield* bulkhead.usage).toEqual({ inUse: 0, waiting: 0 })
      expect(yield* Fiber.join(third)).toBe("third ran")
    }))

  it.live("under random interruptions no slot is lost and never more than `slots` run", () =>
    Effect.gen(function* () {
      const slots = 3
      const bulkhead = yield* makeBulkhead(slots)
      let running = 0
      let most = 0
      const work = Effect.acquireUseRelease(
        Effect.sync(() => {
          running++
          most = Math.max(most, running)
        }),
        () => Effect.flatMap(Random.nextIntBetween(0, 3), (ms) => Effect.sleep(Duration.millis(ms))),
        () => Effect.sync(() => void running--)
      )
      const fibers = yield* Effect.forEach(Array.from({ length: 300 }), () =>
        Effect.fork(Effect.either(bulkhead.withSlot(Duration.millis(Math.random() < 0.3 ? 1 : 1000), busy)(work)))
      )
      // interrupt a third of them at random moments, some while waiting, some while running, some as a slot is handed over
      yield* Effect.forEach(
        fibers.filter((_, i) => i % 3 === 0),
        (fiber) => Effect.flatMap(Random.nextIntBetween(0, 20), (ms) => Fiber.interrupt(fiber).pipe(Effect.delay(Duration.millis(ms)), Effect.fork)),
        { discard: true }
      )
      yield* Effect.forEach(fibers, (fiber) => Fiber.await(fiber), { discard: true })
      expect(most).toBeLessThanOrEqual(slots)
      expect(most).toBe(slots)
      expect(yield* bulkhead.usage).toEqual({ inUse: 0, waiting: 0 })
      // every slot is still there: `slots` callers run at once without waiting
      const gate = yield* Deferred.make<void>()
      const holders = yield* Effect.forEach(Array.from({ length: slots }), () =>
        Effect.fork(bulkhead.withSlot(Duration.millis(1), busy)(Deferred.await(gate)))
      )
      yield* Effect.sleep(Duration.millis(5))
      expect(yield* bulkhead.usage).toEqual({ inUse: slots, waiting: 0 })
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.joinAll(holders)
    }))

  it.effect("a wait's deadline timer ends with its wait: none is left sleeping once the callers are done", () =>
    Effect.gen(function* () {
      const bulkhead = yield* makeBulkhead(1)
      const before = (yield* Fiber.roots).length
      // 200 callers, most of which wait (each with a 10 s deadline timer)
      yield* Effect.forEach(
        Array.from({ length: 200 }, (_, i) => i),
        () => bulkhead.withSlot(Duration.seconds(10), busy)(Effect.yieldNow()),
        { concurrency: 50, discard: true }
      )
      yield* settle
      expect((yield* Fiber.roots).length).toBe(before)
      expect(yield* bulkhead.usage).toEqual({ inUse: 0, waiting: 0 })
    }))

  it.effect("a later caller with a shorter wait still gets its answer at its own deadline", () =>
    Effect.gen(function* () {
      const bulkhead = yield* makeBulkhead(1)
      const holder = yield* holdSlot(bulkhead)
      const patient = yield* Effect.fork(Effect.either(bulkhead.withSlot(Duration.seconds(10), busy)(Effect.succeed("patient ran"))))
      yield* settle
      const hasty = yield* Effect.fork(Effect.either(bulkhead.withSlot(Duration.millis(500), busy)(Effect.succeed("hasty ran"))))
      yield* settle
      yield* TestClock.adjust(Duration.millis(500))
      yield* settle
      expect(yield* Fiber.join(hasty)).toEqual(Either.left("busy"))
      expect(patient.unsafePoll()).toBeNull()
      yield* holder.free
      expect(yield* Fiber.join(patient)).toEqual(Either.right("patient ran"))
      expect(yield* bulkhead.usage).toEqual({ inUse: 0, waiting: 0 })
    }))
})
