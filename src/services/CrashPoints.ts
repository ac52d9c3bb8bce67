import { Config, Context, Effect, Layer, Option } from "effect"

/** Places in the saga where a crash leaves work for recovery. */
export type CrashPoint = "after-take" | "after-payment"

/**
 * A test hook for crash tests: the saga announces the points where a crash matters most, and the
 * live layer kills the process with SIGKILL there when `CHECKOUT_TEST_CRASH_POINT` names the point
 * (on its `CHECKOUT_TEST_CRASH_AFTER`-th occurrence, default 1). Unset, it does nothing.
 * Never set these in production.
 */
export class CrashPoints extends Context.Tag("bookverse/CrashPoints")<
  CrashPoints,
  { readonly reached: (point: CrashPoint) => Effect.Effect<void> }
>() {}

/** No crash points: the default everywhere but crash tests. */
export const NoCrashPoints = Layer.succeed(CrashPoints, { reached: () => Effect.void })

/** Crash points from `CHECKOUT_TEST_CRASH_POINT` and `CHECKOUT_TEST_CRASH_AFTER`. */
export const CrashPointsLive = Layer.effect(
  CrashPoints,
  Effect.gen(function* () {
    const point = yield* Config.option(Config.literal("after-take", "after-payment")("CHECKOUT_TEST_CRASH_POINT"))
    const after = yield* Config.integer("CHECKOUT_TEST_CRASH_AFTER").pipe(Config.withDefault(1))
    if (Option.isNone(point)) return { reached: () => Effect.void }
    yield* Effect.logWarning("crash point armed (test hook)").pipe(Effect.annotateLogs({ point: point.value, after }))
    let seen = 0
    return {
      reached: (p: CrashPoint) =>
        p !== point.value
          ? Effect.void
          : Effect.sync(() => {
              seen += 1
              if (seen >= after) process.kill(process.pid, "SIGKILL")
            })
    }
  })
)
