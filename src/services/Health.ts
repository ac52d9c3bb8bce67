import { SqlClient } from "@effect/sql"
import { Context, Duration, Effect, Either, Layer } from "effect"
import { type BreakerSnapshot, CircuitBreaker } from "./CircuitBreaker.js"

/** What the health endpoints report about the service's dependencies. */
export interface HealthReport {
  /** Whether the database answered `SELECT 1` within 1 s, and why not. */
  readonly database: Either.Either<void, string>
  /** The inventory circuit breaker: anything but `closed` makes the service degraded. */
  readonly inventoryCircuit: BreakerSnapshot
}

/** Probes the service's dependencies for `/health`. */
export class HealthProbe extends Context.Tag("bookverse/HealthProbe")<
  HealthProbe,
  { readonly check: Effect.Effect<HealthReport> }
>() {}

/** Probes the `SqlClient` in context with `SELECT 1` and a 1 s timeout, and reads the circuit breaker. */
export const HealthProbeLive = Layer.effect(
  HealthProbe,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const breaker = yield* CircuitBreaker
    return HealthProbe.of({
      check: sql`SELECT 1 AS ok`.pipe(
        Effect.timeoutFail({ duration: Duration.seconds(1), onTimeout: () => "database did not answer within 1s" }),
        Effect.mapError((e) => (typeof e === "string" ? e : `database error: ${e.message}`)),
        Effect.catchAllDefect((d) => Effect.fail(`database error: ${String(d)}`)),
        Effect.asVoid,
        Effect.either,
        Effect.zip(breaker.snapshot),
        Effect.map(([database, inventoryCircuit]) => ({ database, inventoryCircuit }))
      )
    })
  })
)
