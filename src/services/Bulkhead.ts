import { type Duration, Effect, Exit } from "effect"

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
 * the wait, whatever ended it).
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
  granted: boolean
  wake: ((_: Effect.Effect<void>) => void) | undefined
}

/** A bulkhead of `slots` (an integer >= 1). */
export const makeBulkhead = (slots: number): Effect.Effect<Bulkhead> =>
  Effect.sync(() => {
    let free = slots
    const waiting: Array<Waiter> = []

    const release = (): void => {
      const next = waiting.shift()
      if (next === undefined) {
        free++
        return
      }
      next.granted = true
      next.wake?.(Effect.void)
    }

    /** Waits in the queue; its canceler leaves the queue (a slot already handed over is dealt with by the caller). */
    const wait = (waiter: Waiter) =>
      Effect.async<void>((resume) => {
        if (waiter.granted) return resume(Effect.void)
        waiter.wake = resume
        return Effect.sync(() => {
          const at = waiting.indexOf(waiter)
          if (at >= 0) waiting.splice(at, 1)
        })
      })

    const withSlot =
      <E2>(maxWait: Duration.Duration, onBusy: () => E2) =>
      <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | E2, R> =>
        Effect.uninterruptibleMask((restore) => {
          const run = restore(effect).pipe(Effect.ensuring(Effect.sync(release)))
          if (free > 0) {
            free--
            return run
          }
          const waiter: Waiter = { granted: false, wake: undefined }
          waiting.push(waiter)
          return Effect.flatMap(
            // the wait is interruptible by its timeout even where the caller is not (an acquire)
            Effect.exit(restore(Effect.timeoutFail(Effect.interruptible(wait(waiter)), { duration: maxWait, onTimeout: onBusy }))),
            (exit): Effect.Effect<A, E | E2, R> => {
              if (waiter.granted) {
                // the slot is ours, even when the wait ended otherwise: run, or pass it on
                if (Exit.isSuccess(exit)) return run
                release()
                return Effect.failCause(exit.cause)
              }
              const at = waiting.indexOf(waiter)
              if (at >= 0) waiting.splice(at, 1)
              return Exit.isFailure(exit) ? Effect.failCause(exit.cause) : Effect.die(new Error("bulkhead: woken without a slot"))
            }
          )
        })

    return {
      withSlot,
      usage: Effect.sync(() => ({ inUse: slots - free, waiting: waiting.length }))
    } satisfies Bulkhead
  })
