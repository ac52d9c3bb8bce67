import { SqlClient } from "@effect/sql"
import { Context, Duration, Effect, Either, Layer } from "effect"
import { type BreakerSnapshot, CircuitBreaker } from "./CircuitBreaker.js"
import { InventoryHealth } from "./InventoryClient.js"

/** What the health endpoints report about the service's dependencies. */
export interface HealthReport {
  /** Whether the database answered `SELECT 1` within 1 s, and why not. */
  readonly database: Either.Either<void, string>
  /** The inventory circuit breaker: anything but `closed` makes the service degraded. */
  readonly inventoryCircuit: BreakerSnapshot
}

/** What `/health/ready` reports: the liveness report and whether the inventory answers. */
export interface ReadinessReport extends HealthReport {
  /** Whether the inventory's `/health` answered within 1 s. */
  readonly inventoryReachable: boolean
}

/** Probes the service's dependencies for `/health` and `/health/ready`. */
export class HealthProbe extends Context.Tag("bookverse/HealthProbe")<
  HealthProbe,
  {
    readonly check: Effect.Effect<HealthReport>
    readonly ready: Effect.Effect<ReadinessReport>
  }
>() {}

/**
 * Probes the `SqlClient` in context with `SELECT 1` and a 1 s timeout, reads the circuit breaker,
 * and (for readiness) pings the inventory.
 */
export const HealthProbeLive = Layer.effect(
  HealthProbe,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const breaker = yield* CircuitBreaker
    const inventory = yield* InventoryHealth
    const check = sql`SELECT 1 AS ok`.pipe(
        Effect.timeoutFail({ duration: Duration.seconds(1), onTimeout: () => "database did not answer within 1s" }),
        Effect.mapError((e) => (typeof e === "string" ? e : `database error: ${e.message}`)),
        Effect.catchAllDefect((d) => Effect.fail(`database error: ${String(d)}`)),
        Effect.asVoid,
        Effect.either,
        Effect.zip(breaker.snapshot),
        Effect.map(([database, inventoryCircuit]) => ({ database, inventoryCircuit }))
      )
    return HealthProbe.of({
      check,
      ready: Effect.map(Effect.all([check, inventory.ping], { concurrency: 2 }), ([report, inventoryReachable]) => ({
        ...report,
        inventoryReachable
      }))
    })
  })
)
