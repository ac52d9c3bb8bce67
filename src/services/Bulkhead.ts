import { type Duration, Effect, Exit, Fiber } from "effect"

/**
 * A bulkhead: at most `slots` effects run at once; the others wait in arrival order (FIFO). The
 * inventory client holds one slot per request (`INVENTORY_MAX_CONCURRENCY`, ARCHITECTURE.md
 * "Inventory client policy").
 *
 * Why not `Effect.makeSemaphore`: a semaphore's release wakes every waiter, each of which re-checks
 * and all but one go back to sleep, so with many callers waiting each release costs work in
 * proportion to the queue; here a release hands its slot to exactly one waiter. And a slot is never
 * lost: a waiter that is interrupted (its deadline passed, or its caller gave up) at the moment a
 * slot is handed to it passes the slot on (the hand-over is recorded on the waiter and checked after
 * the wait, whatever ended it). A waiter's deadline is a sleeping timer fiber (Effect's `Clock`, so
 * tests drive it with `TestClock`) that ends the wait itself; it is stopped without being joined
 * (`Effect.timeout` would race two fibers and join them for every wait).
 */
export interface Bulkhead {
  /**
   * Runs `effect` holding one slot, waiting at most `maxWait` for one. When none comes free in
   * time, fails with `onBusy()` and `effect` never runs. The slot is released however `effect`
   * ends; only the wait and `effect` itself are interruptible.
   */
  readonly withSlot: <E2>(
    maxWait: Duration.Duration,
    onBusy: () => E2
  ) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | E2, R>
  /** Slots in use now, and callers waiting for one (for tests and metrics). */
  readonly usage: Effect.Effect<{ readonly inUse: number; readonly waiting: number }>
}

interface Waiter {
  /** A slot was handed to this waiter (by a release). */
  granted: boolean
  /** Its deadline passed first: it left the queue without a slot. */
  timedOut: boolean
  wake: ((_: Effect.Effect<void>) => void) | undefined
}

/** A bulkhead of `slots` (an integer >= 1). */
export const makeBulkhead = (slots: number): Effect.Effect<Bulkhead> =>
  Effect.sync(() => {
    let free = slots
    const waiting: Array<Waiter> = []

    const leave = (waiter: Waiter): void => {
      const at = waiting.indexOf(waiter)
      if (at >= 0) waiting.splice(at, 1)
    }

    const release = (): void => {
      const next = waiting.shift()
      if (next === undefined) {
        free++
        return
      }
      next.granted = true
      next.wake?.(Effect.void)
    }

    /** Waits in the queue until a slot is handed over or the deadline passes; its canceler leaves the queue. */
    const wait = (waiter: Waiter) =>
      Effect.async<void>((resume) => {
        if (waiter.granted || waiter.timedOut) return resume(Effect.void)
        waiter.wake = resume
        return Effect.sync(() => leave(waiter))
      })

    /** After `maxWait`, ends the wait of a waiter that has no slot yet. */
    const deadline = (waiter: Waiter, maxWait: Duration.Duration) =>
      Effect.zipRight(
        Effect.sleep(maxWait),
        Effect.sync(() => {
          if (waiter.granted) return
          waiter.timedOut = true
          leave(waiter)
          waiter.wake?.(Effect.void)
        })
      )

    const withSlot =
      <E2>(maxWait: Duration.Duration, onBusy: () => E2) =>
      <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | E2, R> =>
        Effect.uninterruptibleMask((restore) => {
          const run = restore(effect).pipe(Effect.ensuring(Effect.sync(release)))
          if (free > 0) {
            free--
            return run
          }
          const waiter: Waiter = { granted: false, timedOut: false, wake: undefined }
          waiting.push(waiter)
          // the timer is forked interruptible (it would inherit this uninterruptible region and outlive
          // its wait, holding its closure until the deadline)
          return Effect.flatMap(Effect.forkDaemon(Effect.interruptible(deadline(waiter, maxWait))), (timer) =>
            Effect.flatMap(
              // the timer ends the wait even where the caller cannot be interrupted (an acquire)
              Effect.exit(restore(wait(waiter))),
              (exit): Effect.Effect<A, E | E2, R> =>
                Effect.zipRight(
                  Effect.flatMap(Effect.fiberId, (id) => Fiber.interruptAsFork(timer, id)),
                  Effect.suspend((): Effect.Effect<A, E | E2, R> => {
                    if (waiter.granted) {
                      // the slot is ours, even when the wait ended otherwise: run, or pass it on
                      if (Exit.isSuccess(exit)) return run
                      release()
                      return Effect.failCause(exit.cause)
                    }
                    leave(waiter)
                    if (Exit.isFailure(exit)) return Effect.failCause(exit.cause)
                    return waiter.timedOut ? Effect.fail(onBusy()) : Effect.die(new Error("bulkhead: woken without a slot"))
                  })
                )
            )
          )
        })

    return {
      withSlot,
      usage: Effect.sync(() => ({ inUse: slots - free, waiting: waiting.length }))
    } satisfies Bulkhead
  })
