import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Cause, Config, Context, DateTime, Effect, Either, Exit, Layer, Option, Schema } from "effect"
import type { CheckoutError } from "../domain/Errors.js"
import { encodeOrder } from "../domain/Order.js"
import { makeBulkhead } from "../services/Bulkhead.js"
import { Checkout, type PlacedOrder } from "../services/Checkout.js"
import { type OrderOutcome, recordOrder, recordOrderNow } from "../services/Metrics.js"
import { PrometheusMetrics } from "../layers/Telemetry.js"
import { HealthProbe } from "../services/Health.js"
import { CheckoutApi, Health, NotReady, Readiness, Unhealthy } from "./Api.js"
import { errorResponse, internalErrorResponse, isDatabaseOutage, overloadedResponse } from "./ErrorResponse.js"
import { readOrderSubmission } from "./RequestBody.js"
import { VERSION } from "./Version.js"

export { VERSION }

/**
 * `MAX_ORDERS_IN_FLIGHT` (256): the most `POST /orders` one process handles at once. Each order in
 * flight holds ~100 KB of heap (its fibers, its waits for inventory slots), so without a bound a
 * burst against a slow inventory grows the heap until the process dies; beyond the bound a request
 * is answered 503 `overloaded` at once, unread.
 */
export const MaxOrdersInFlight = Config.integer("MAX_ORDERS_IN_FLIGHT").pipe(
  Config.validate({ message: "must be an integer from 1 to 100000", validation: (n) => n >= 1 && n <= 100_000 }),
  Config.withDefault(256)
)

/** `REQUIRE_IDEMPOTENCY_KEY` (false): when true, `POST /orders` without a key is a 400. */
export const RequireIdempotencyKey = Config.boolean("REQUIRE_IDEMPOTENCY_KEY").pipe(Config.withDefault(false))

/** The `outcome` label of an order request's metrics. */
const outcomeOf = (exit: Exit.Exit<PlacedOrder, CheckoutError>): OrderOutcome =>
  Exit.match(exit, {
    onSuccess: ({ replayed }) => (replayed ? "replay" : "confirmed"),
    onFailure: (cause) =>
      Option.match(Cause.failureOption(cause), {
        onNone: () => (isDatabaseOutage(cause) ? "service_unavailable" : "internal_error"),
        onSome: (e): OrderOutcome => {
          switch (e._tag) {
            case "ValidationError":
              return "validation_error"
            case "PaymentFailed":
              return e.replayed ? "replay" : "payment_failed"
            case "InsufficientStock":
              return "insufficient_stock"
            case "UnknownBook":
              return "unknown_book"
            case "IdempotencyConflict":
              return "conflict"
            case "IdempotencyInProgress":
              return "in_progress"
            case "UpstreamUnavailable":
              return "upstream_unavailable"
            case "UpstreamTimeout":
              return "upstream_timeout"
          }
        }
      })
  })
const encodeUnhealthy = Schema.encodeSync(Unhealthy)
const encodeNotReady = Schema.encodeSync(NotReady)

/** What serves the order routes; the same handlers back the `HttpApi` group and the fast path. */
export interface OrderRoutesService {
  /**
   * `POST /orders`: reads and decodes the body (`readOrderSubmission`), places the order and
   * answers 201 with the order (200 and `Idempotent-Replayed: true` for a replay), or the error's
   * status and body (`errorResponse`); beyond `MAX_ORDERS_IN_FLIGHT` orders in flight, 503
   * `overloaded` at once, the body unread. Never fails.
   */
  readonly createOrder: (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<HttpServerResponse.HttpServerResponse>
  /** `GET /orders/{orderId}`: 200 with the order, 404 `order_not_found`. Never fails. */
  readonly getOrder: (orderId: string) => Effect.Effect<HttpServerResponse.HttpServerResponse>
}

/** The order routes' handlers (`OrderRoutesLive`). */
export class OrderRoutes extends Context.Tag("bookverse/OrderRoutes")<OrderRoutes, OrderRoutesService>() {}

/**
 * The order routes on the `Checkout` in context, configured by `REQUIRE_IDEMPOTENCY_KEY` and
 * `MAX_ORDERS_IN_FLIGHT` (one admission bound per process).
 */
export const OrderRoutesLive = Layer.effect(
  OrderRoutes,
  Effect.gen(function* () {
    const checkout = yield* Checkout
    const requireKey = yield* RequireIdempotencyKey
    const maxInFlight = yield* MaxOrdersInFlight
    // load shedding: an order beyond the bound is answered at once, before its body is read
    const admission = yield* makeBulkhead(maxInFlight)
    const admitted = admission.withSlotIfFree(() =>
      Effect.zipRight(recordOrder("overloaded", 0), overloadedResponse(maxInFlight))
    )
    const answer = (exit: Exit.Exit<PlacedOrder, CheckoutError>) =>
      Exit.match(exit, {
        onSuccess: ({ order, replayed }) =>
          // (`unsafeJson`: the encoded order is plain JSON data, which always stringifies)
          Effect.succeed(
            HttpServerResponse.unsafeJson(encodeOrder(order), {
              status: replayed ? 200 : 201,
              headers: replayed ? { "idempotent-replayed": "true" } : {}
            })
          ),
        onFailure: (cause) =>
          Option.match(Cause.failureOption(cause), {
            onSome: errorResponse,
            onNone: () => internalErrorResponse(cause)
          })
      })
    return OrderRoutes.of({
      // the body is read and decoded here, so that every problem (content type, size, JSON, each
      // field) is reported as one validation_error in the API's own error shape
      createOrder: (request) =>
        admitted(
          Effect.suspend(() => {
            const started = performance.now()
            return readOrderSubmission(request, { requireKey }).pipe(
              Effect.flatMap(({ idempotencyKey, request: order }) => checkout.placeOrder(order, idempotencyKey)),
              Effect.exit,
              Effect.flatMap((exit) => {
                recordOrderNow(outcomeOf(exit), (performance.now() - started) / 1000)
                return answer(exit)
              })
            )
          }).pipe(Effect.catchAllCause(internalErrorResponse))
        ),
      getOrder: (orderId) =>
        checkout.getOrder(orderId).pipe(
          Effect.map((order) => HttpServerResponse.unsafeJson(encodeOrder(order))),
          Effect.catchAll(errorResponse),
          Effect.catchAllCause(internalErrorResponse)
        )
    })
  })
)

/** `POST /orders` and `GET /orders/{orderId}` in the `HttpApi`, served by `OrderRoutes`. */
export const OrdersLive = HttpApiBuilder.group(CheckoutApi, "orders", (handlers) =>
  Effect.map(OrderRoutes, (routes) =>
    handlers
      .handleRaw("createOrder", ({ request }) => routes.createOrder(request))
      .handle("getOrder", ({ path }) => routes.getOrder(path.orderId))
  )
)

/**
 * `GET /health`: 200 `healthy` while the database answers (`degraded` while the inventory circuit
 * breaker is not closed), else 503 `unhealthy`. `GET /health/ready`: 200 `ready` (`degraded` when
 * the inventory does not answer within 1 s or the breaker is not closed), 503 when the database
 * does not answer.
 */
export const HealthLive = HttpApiBuilder.group(CheckoutApi, "health", (handlers) =>
  Effect.gen(function* () {
    const probe = yield* HealthProbe
    return handlers
      .handle("ready", () =>
        Effect.gen(function* () {
          const report = yield* probe.ready
          const timestamp = DateTime.formatIso(yield* DateTime.now)
          const inventory = report.inventoryReachable ? "reachable" : "unreachable"
          const inventoryCircuit = report.inventoryCircuit.state
          return yield* Either.match(report.database, {
            onRight: () =>
              Effect.succeed(
                Readiness.make({
                  status: inventory === "reachable" && inventoryCircuit === "closed" ? "ready" : "degraded",
                  version: VERSION,
                  timestamp,
                  checks: { database: "up", inventory, inventoryCircuit }
                })
              ),
            onLeft: (reason) =>
              HttpServerResponse.json(
                encodeNotReady(
                  NotReady.make({
                    status: "unready",
                    version: VERSION,
                    timestamp,
                    reason,
                    checks: { database: "down", inventory, inventoryCircuit }
                  })
                ),
                { status: 503 }
              ).pipe(Effect.orDie)
          })
        })
      )
      .handle("health", () =>
      Effect.gen(function* () {
        const report = yield* probe.check
        const timestamp = DateTime.formatIso(yield* DateTime.now)
        return yield* Either.match(report.database, {
          onRight: () =>
            Effect.succeed(
              Health.make({
                status: report.inventoryCircuit.state === "closed" ? "healthy" : "degraded",
                version: VERSION,
                timestamp,
                checks: { database: "up", inventoryCircuit: report.inventoryCircuit.state }
              })
            ),
          onLeft: (reason) =>
            HttpServerResponse.json(encodeUnhealthy(Unhealthy.make({ status: "unhealthy", version: VERSION, timestamp, reason })), {
              status: 503
            }).pipe(Effect.orDie)
        })
      })
    )
  })
)

/** `GET /metrics`: every metric in the Prometheus text format. */
export const MetricsLive = HttpApiBuilder.group(CheckoutApi, "metrics", (handlers) =>
  Effect.map(PrometheusMetrics, (metrics) => handlers.handle("metrics", () => metrics.render))
)

/** Every handler of `CheckoutApi`, needing `OrderRoutes`, `HealthProbe` and `PrometheusMetrics`. */
export const HandlersLive = Layer.mergeAll(OrdersLive, HealthLive, MetricsLive)
