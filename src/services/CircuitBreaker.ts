import { Config, Context, Duration, Effect, Layer } from "effect"
import { UpstreamUnavailable } from "../domain/Errors.js"
import { type InventoryClientService } from "./InventoryClient.js"

/** The breaker's state: `closed` (calls flow), `open` (new orders fail fast), `half_open` (one trial order). */
export type BreakerState = "closed" | "open" | "half_open"

/** What `/health` shows of the breaker. */
export interface BreakerSnapshot {
  readonly state: BreakerState
  /** Inventory calls that failed in a row (5xx, refused, reset, timeout, unknown outcome). */
  readonly consecutiveFailures: number
}

/**
 * A circuit breaker around the inventory: after `failureThreshold` consecutive failed calls it
 * opens, and for `cooldown` new orders fail fast with 503 `upstream_unavailable` and
 * `Retry-After` without calling the inventory; then one trial order is let through (half open):
 * a call that succeeds closes it, one that fails opens it again.
 */
export interface CircuitBreakerService {
  /** Lets a new order through, or fails with `UpstreamUnavailable` (`retryAfterSeconds` set) while open. */
  readonly guard: Effect.Effect<void, UpstreamUnavailable>
  /** Records the outcome of one inventory call (after its retries). */
  readonly record: (outcome: "success" | "failure") => Effect.Effect<void>
  readonly snapshot: Effect.Effect<BreakerSnapshot>
}

/** The inventory's circuit breaker. */
export class CircuitBreaker extends Context.Tag("bookverse/CircuitBreaker")<CircuitBreaker, CircuitBreakerService>() {}

/** When the breaker opens and how long it stays open. */
export interface CircuitBreakerOptions {
  readonly failureThreshold: number
  readonly cooldown: Duration.Duration
}

/** `CIRCUIT_BREAKER_FAILURES` (5) and `CIRCUIT_BREAKER_COOLDOWN_SECONDS` (10). */
export const CircuitBreakerConfig: Config.Config<CircuitBreakerOptions> = Config.all({
  failureThreshold: Config.integer("CIRCUIT_BREAKER_FAILURES").pipe(
    Config.validate({ message: "must be an integer >= 1", validation: (n) => n >= 1 }),
    Config.withDefault(5)
  ),
  cooldown: Config.number("CIRCUIT_BREAKER_COOLDOWN_SECONDS").pipe(
    Config.validate({ message: "must be a positive number of seconds", validation: (n) => n > 0 }),
    Config.withDefault(10),
    Config.map((s) => Duration.millis(Math.round(s * 1000)))
  )
})

interface Internal {
  readonly state: BreakerState
  readonly failures: number
  /** When it last opened (epoch ms). */
  readonly openedAt: number
  /** When the half-open trial started (epoch ms), or 0. */
  readonly trialAt: number
}

/** A breaker in memory (per process), timed by Effect's `Clock`. */
export const makeCircuitBreaker = (options: CircuitBreakerOptions): Effect.Effect<CircuitBreakerService> =>
  Effect.gen(function* () {
    const cooldownMs = Duration.toMillis(options.cooldown)
    // Plain state, read and changed only inside single synchronous steps: every call of every
    // order passes through here, and while the breaker is closed without failures (nearly always)
    // neither a guard nor a success needs the clock or anything else.
    let s: Internal = { state: "closed", failures: 0, openedAt: 0, trialAt: 0 }

    /** The seconds until a call may be tried (0: now), taking the half-open trial when it is due. */
    const admit = (now: number): number => {
      switch (s.state) {
        case "closed":
          return 0
        case "open":
          if (now - s.openedAt >= cooldownMs) {
            s = { ...s, state: "half_open", trialAt: now }
            return 0
          }
          return Math.ceil((cooldownMs - (now - s.openedAt)) / 1000)
        case "half_open":
          // one trial at a time; a trial that never reported back gives way after a cool-down
          if (now - s.trialAt >= cooldownMs) {
            s = { ...s, trialAt: now }
            return 0
          }
          return Math.ceil((cooldownMs - (now - s.trialAt)) / 1000)
      }
    }

    const guard = Effect.suspend(() =>
      s.state === "closed"
        ? Effect.void
        : Effect.clockWith((clock) => {
            const retryAfter = admit(clock.unsafeCurrentTimeMillis())
            return retryAfter === 0
              ? Effect.void
              : Effect.fail(
                  new UpstreamUnavailable({
                    reason: "the inventory service is failing; the circuit breaker is open",
                    retryAfterSeconds: Math.max(1, retryAfter)
                  })
                )
          })
    )

    /** The state `outcome` moves the breaker to, if it changes; `s` updated. */
    const transition = (outcome: "success" | "failure", now: number): BreakerState | undefined => {
      if (outcome === "success") {
        const changed = s.state === "closed" ? undefined : "closed"
        s = { state: "closed", failures: 0, openedAt: 0, trialAt: 0 }
        return changed
      }
      const failures = s.failures + 1
      if (s.state === "half_open" || (s.state === "closed" && failures >= options.failureThreshold)) {
        s = { state: "open", failures, openedAt: now, trialAt: 0 }
        return "open"
      }
      s = { ...s, failures }
      return undefined
    }

    const record = (outcome: "success" | "failure") =>
      Effect.suspend(() =>
        outcome === "success" && s.state === "closed" && s.failures === 0
          ? Effect.void
          : Effect.clockWith((clock) => {
              const changed = transition(outcome, clock.unsafeCurrentTimeMillis())
              return changed === undefined
                ? Effect.void
                : (changed === "open" ? Effect.logWarning : Effect.logInfo)("inventory circuit breaker changed state").pipe(
                    Effect.annotateLogs({ circuitBreaker: changed })
                  )
            })
      )

    const snapshot = Effect.sync((): BreakerSnapshot => ({ state: s.state, consecutiveFailures: s.failures }))
    return { guard, record, snapshot }
  })

/** The breaker configured by `CircuitBreakerConfig`. */
export const CircuitBreakerLive = Layer.effect(CircuitBreaker, Effect.flatMap(CircuitBreakerConfig, makeCircuitBreaker))

const isInventoryDown = (e: { readonly _tag: string }): boolean =>
  e._tag === "InventoryUnavailable" || e._tag === "InventoryTimeout" || e._tag === "AdjustOutcomeUnknown"

/**
 * Decorates an inventory client so that every call's outcome is recorded by `breaker`: an answer
 * (2xx or 4xx, a refused adjust included) is a success; 5xx, refused or broken connections,
 * timeouts and unknown outcomes are failures. A full bulkhead is neither.
 */
export const withCircuitBreaker = (
  client: InventoryClientService,
  breaker: CircuitBreakerService
): InventoryClientService => {
  const observe = <A, E extends { readonly _tag: string }>(effect: Effect.Effect<A, E>) =>
    effect.pipe(
      Effect.tapBoth({
        onSuccess: () => breaker.record("success"),
        onFailure: (e) => (isInventoryDown(e) ? breaker.record("failure") : e._tag === "InventoryBusy" ? Effect.void : breaker.record("success"))
      })
    )
  return {
    getStock: (bookId) => observe(client.getStock(bookId)),
    adjust: (bookId, change, note) => observe(client.adjust(bookId, change, note)),
    findAdjustment: (bookId, note, since) => observe(client.findAdjustment(bookId, note, since))
  }
}
