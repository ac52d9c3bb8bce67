import { Effect, FiberRef, HashMap } from "effect"

/**
 * The correlation id of the request being served (from `X-Request-Id`, or generated). A FiberRef
 * so that it follows the request into forked fibers (the detached saga) and into every inventory
 * call, which forwards it as `X-Request-Id`. Empty outside a request.
 */
export const CorrelationId: FiberRef.FiberRef<string> = FiberRef.unsafeMake("")

/** The current correlation id, or "" outside a request. */
export const currentCorrelationId: Effect.Effect<string> = FiberRef.get(CorrelationId)

/** Runs `effect` with `id` as its correlation id, and annotates its logs with it. */
export const withCorrelationId =
  (id: string) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    effect.pipe(Effect.annotateLogs("correlationId", id), Effect.locally(CorrelationId, id))

/**
 * Annotates every later log line of the current fiber with `annotations` (key -> value), for good:
 * `Effect.annotateLogs` without the scope, for a fiber that does one job and ends with it (the HTTP
 * server's fiber per request, the saga's own fiber), where undoing the change is work for nothing.
 */
export const annotateFiberLogs = (annotations: Readonly<Record<string, unknown>>): Effect.Effect<void> =>
  FiberRef.update(FiberRef.currentLogAnnotations, (current) => {
    let next = current
    for (const [key, value] of Object.entries(annotations)) next = HashMap.set(next, key, value)
    return next
  })

/**
 * Makes `id` the correlation id of the rest of the current fiber, and annotates its logs with it:
 * `withCorrelationId` without the scope, for a fiber that serves one request and ends with it
 * (the HTTP server forks one per request), where undoing the change would be work for nothing.
 */
export const setCorrelationId = (id: string): Effect.Effect<void> =>
  Effect.zipRight(FiberRef.set(CorrelationId, id), annotateFiberLogs({ correlationId: id }))
