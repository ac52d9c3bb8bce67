import { Effect, type Schedule } from "effect"

/**
 * `Effect.retry(effect, { schedule, while })`, with the schedule set up only once `effect` has
 * failed: nearly every run succeeds at once, and a schedule's driver (with its state and a context
 * change) is work for nothing then. The schedule goes on from the failure already seen (its first
 * step is fed that failure, without running `effect` again), so the attempts and the delays
 * between them are exactly those of `Effect.retry`. Fails with the last failure.
 */
export const retryAfterFirstFailure = <A, E, R, Out, R2>(
  effect: Effect.Effect<A, E, R>,
  options: { readonly schedule: Schedule.Schedule<Out, E, R2>; readonly while?: (e: E) => boolean }
): Effect.Effect<A, E, R | R2> =>
  Effect.catchAll(effect, (first) => {
    if (options.while !== undefined && !options.while(first)) return Effect.fail(first)
    let replayed = false
    const again = Effect.suspend(() => (replayed ? effect : ((replayed = true), Effect.fail(first))))
    return Effect.retry(again, options)
  })
