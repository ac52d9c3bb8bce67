import { Effect, FiberRef, type Tracer } from "effect"

/**
 * `Effect.withSpan(name)` when tracing is on, and `effect` untouched when it is off.
 *
 * Tracing is off when no exporter is configured (`TelemetryLive`): then a span is work nobody
 * reads, and even Effect's no-op span copies the fiber's context. Spans made here skip the
 * captured stack trace (the span's name says where it comes from).
 */
export const traced =
  (name: string, options?: Omit<Tracer.SpanOptions, "captureStackTrace">) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.withFiberRuntime<A, E, R>((fiber) =>
      fiber.getFiberRef(FiberRef.currentTracerEnabled)
        ? Effect.withSpan(effect, name, { ...options, captureStackTrace: false })
        : effect
    )

const untraced =
  (_name: string, _options?: Omit<Tracer.SpanOptions, "captureStackTrace">) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    effect

/**
 * `traced`, or, when tracing is off in the fiber that runs this (a service's constructor, when its
 * layer is built: `TelemetryLive` turns tracing off for the whole process when nothing exports
 * spans), a `traced` that leaves effects untouched without looking at every call: ~1 Effect step
 * per span, ~11 per order. A service built with tracing on keeps the per-call check.
 */
export const tracedWhereBuilt: Effect.Effect<typeof traced> = Effect.map(
  FiberRef.get(FiberRef.currentTracerEnabled),
  (enabled) => (enabled ? traced : untraced)
)
