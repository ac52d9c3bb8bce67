import { Effect, type Schedule } from "effect"

/**
 * What `retryAfterFirstFailure` does once `effect` has failed with `first`: fails with `first` at
 * once when `options.while` says no, else retries `effect` by the schedule, going on from that
 * failure (the schedule's first step is fed `first`, without running `effect` again), so the
 * attempts and the delays between them are exactly those of `Effect.retry`. Fails with the last
 * failure. For a caller that already handles the first run's outcome itself (one `matchEffect`
 * for the success and the failure path).
 */
export const retryAfter = <A, E, R, Out, R2>(
  first: E,
  effect: Effect.Effect<A, E, R>,
  options: { readonly schedule: Schedule.Schedule<Out, E, R2>; readonly while?: (e: E) => boolean }
): Effect.Effect<A, E, R | R2> => {
  if (options.while !== undefined && !options.while(first)) return Effect.fail(first)
  let replayed = false
  const again = Effect.suspend(() => (replayed ? effect : ((replayed = true), Effect.fail(first))))
  return Effect.retry(again, options)
}

/**
 * `Effect.retry(effect, { schedule, while })`, with the schedule set up only once `effect` has
 * failed: nearly every run succeeds at once, and a schedule's driver (with its state and a context
 * change) is work for nothing then. The attempts and the delays between them are exactly those of
 * `Effect.retry` (see `retryAfter`). Fails with the last failure.
 */
export const retryAfterFirstFailure = <A, E, R, Out, R2>(
  effect: Effect.Effect<A, E, R>,
  options: { readonly schedule: Schedule.Schedule<Out, E, R2>; readonly while?: (e: E) => boolean }
): Effect.Effect<A, E, R | R2> => Effect.catchAll(effect, (first) => retryAfter(first, effect, options))
