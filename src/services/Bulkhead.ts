import { Clock, Duration, Effect, type Fiber, FiberId } from "effect"

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
 * the wait, whatever ended it). Deadlines are kept by one sweeper fiber per bulkhead, on Effect's
 * `Clock` (tests drive it with `TestClock`): it sleeps until the earliest deadline, ends the waits
 * that are due, and stops when nobody waits (`Effect.timeout` would race and join two fibers for
 * every wait).
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
  /**
   * Runs `effect` holding one slot when one is free now; otherwise runs `onFull()` instead, at once
   * and without a slot (load shedding: nothing waits). The slot is released however `effect` ends.
   */
  readonly withSlotIfFree: <B, E2, R2>(
    onFull: () => Effect.Effect<B, E2, R2>
  ) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A | B, E | E2, R | R2>
  /** Slots in use now, and callers waiting for one (for tests and metrics). */
  readonly usage: Effect.Effect<{ readonly inUse: number; readonly waiting: number }>
}

interface Waiter {
  /** A slot was handed to this waiter (by a release). */
  granted: boolean
  /** Its deadline passed first: it left the queue without a slot. */
  timedOut: boolean
  wake: ((_: Effect.Effect<void>) => void) | undefined
  /** When its wait ends without a slot, epoch ms by Effect's `Clock`. */
  readonly deadline: number
}

/** The fiber that ends waits at their deadlines, and when it next wakes (epoch ms). */
interface Sweeper {
  fiber: Fiber.RuntimeFiber<void> | undefined
  wakeAt: number
}

/** A bulkhead of `slots` (an integer >= 1). */
export const makeBulkhead = (slots: number): Effect.Effect<Bulkhead> =>
  Effect.sync(() => {
    let free = slots
    const waiting: Array<Waiter> = []
    let sweeper: Sweeper | undefined

    const remove = (waiter: Waiter): void => {
      const at = waiting.indexOf(waiter)
      if (at >= 0) waiting.splice(at, 1)
    }

    /** With nobody waiting, the sweeper has nothing to do: stop it. */
    const stopSweeperIfIdle = (): void => {
      if (waiting.length > 0 || sweeper === undefined) return
      sweeper.fiber?.unsafeInterruptAsFork(FiberId.none)
      sweeper = undefined
    }

    const leave = (waiter: Waiter): void => {
      remove(waiter)
      stopSweeperIfIdle()
    }

    const release = (): void => {
      const next = waiting.shift()
      if (next === undefined) {
        free++
        return
      }
      next.granted = true
      next.wake?.(Effect.void)
      stopSweeperIfIdle()
    }

    /**
     * Waits in the queue until a slot is handed over or the deadline passes. No canceler: an
     * interrupted wait is followed by the caller's own failure handler (in `withSlot`), which leaves
     * the queue or passes on a slot handed over meanwhile (a canceler would cost an interruptible
     * region of ~8 Effect steps per wait, and at 32 connections nearly every inventory call waits).
     */
    const wait = (waiter: Waiter) =>
      Effect.async<void>((resume) => {
        if (waiter.granted || waiter.timedOut) return resume(Effect.void)
        waiter.wake = resume
      })

    /** Ends the wait of every waiter whose deadline has passed, then sleeps until the next deadline. */
    const sweep = (me: Sweeper): Effect.Effect<void> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        if (sweeper !== me) return Effect.void // stopped, or replaced by one that wakes sooner
        for (const waiter of waiting.filter((w) => w.deadline <= now)) {
          waiter.timedOut = true
          remove(waiter)
          waiter.wake?.(Effect.void)
        }
        if (waiting.length === 0) {
          sweeper = undefined
          return Effect.void
        }
        let next = Infinity
        for (const waiter of waiting) next = Math.min(next, waiter.deadline)
        me.wakeAt = next
        return Effect.zipRight(Effect.sleep(Duration.millis(next - now)), Effect.suspend(() => sweep(me)))
      })

    /**
     * Makes sure a sweeper wakes by `deadline`: one fiber for all waits (a timer per wait would be a
     * fiber per wait). `undefined` when the running sweeper already wakes by then (the usual case:
     * no step at all); else the new sweeper is recorded at once, so that no other caller starts one
     * meanwhile, and the effect returned forks it (interruptible, or it would inherit the caller's
     * uninterruptible region). A sweeper replaced or stopped before it runs ends at its first look.
     */
    const sweeperBy = (deadline: number): Effect.Effect<void> | undefined => {
      if (sweeper !== undefined && sweeper.wakeAt <= deadline) return undefined
      sweeper?.fiber?.unsafeInterruptAsFork(FiberId.none)
      const me: Sweeper = { fiber: undefined, wakeAt: deadline }
      sweeper = me
      return Effect.map(Effect.forkDaemon(Effect.interruptible(sweep(me))), (fiber) => {
        me.fiber = fiber
      })
    }

    /**
     * Runs `effect` (made interruptible by the caller's `restore`) in a slot already taken, and gives
     * the slot back as it ends, however it ends: this runs inside the uninterruptible region the slot
     * was taken in, and an interruption is a failure here, so no second region is needed, as
     * `ensuring` would make.
     */
    const holding = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
      Effect.matchCauseEffect(effect, {
        onFailure: (cause) => {
          release()
          return Effect.failCause(cause)
        },
        onSuccess: (a) => {
          release()
          return Effect.succeed(a)
        }
      })

    const withSlotIfFree =
      <B, E2, R2>(onFull: () => Effect.Effect<B, E2, R2>) =>
      <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A | B, E | E2, R | R2> =>
        Effect.uninterruptibleMask((restore): Effect.Effect<A | B, E | E2, R | R2> => {
          if (free === 0) return restore(onFull())
          free--
          return holding(restore(effect))
        })

    const withSlot =
      <E2>(maxWait: Duration.Duration, onBusy: () => E2) =>
      <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | E2, R> =>
        Effect.uninterruptibleMask((restore) => {
          const run = holding(restore(effect))
          if (free > 0) {
            free--
            return run
          }
          // (the clock is read only when there is a wait to time; the free count is looked at again
          // in the same step as the queue is joined, since another fiber may have released a slot
          // between the two steps)
          return Effect.clockWith((clock) => {
            if (free > 0) {
              free--
              return run
            }
            const waiter: Waiter = {
              granted: false,
              timedOut: false,
              wake: undefined,
              deadline: clock.unsafeCurrentTimeMillis() + Duration.toMillis(maxWait)
            }
            waiting.push(waiter)
            // (one handler for both ends of the wait; the sweeper ends it even where the caller
            // cannot be interrupted, an acquire)
            const waited = Effect.matchCauseEffect(restore(wait(waiter)), {
              onFailure: (cause): Effect.Effect<A, E | E2, R> => {
                // interrupted: a slot handed over meanwhile is passed on, else the queue is left
                if (waiter.granted) release()
                else leave(waiter)
                return Effect.failCause(cause)
              },
              onSuccess: (): Effect.Effect<A, E | E2, R> => {
                if (waiter.granted) return run
                leave(waiter)
                return waiter.timedOut ? Effect.fail(onBusy()) : Effect.die(new Error("bulkhead: woken without a slot"))
              }
            })
            const startSweeper = sweeperBy(waiter.deadline)
            return startSweeper === undefined ? waited : Effect.zipRight(startSweeper, waited)
          })
        })

    return {
      withSlot,
      withSlotIfFree,
      usage: Effect.sync(() => ({ inUse: slots - free, waiting: waiting.length }))
    } satisfies Bulkhead
  })
