import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { Config, DateTime, Effect, Either, Layer, Schema } from "effect"
import packageJson from "../../package.json" with { type: "json" }
import { Order } from "../domain/Order.js"
import { Checkout } from "../services/Checkout.js"
import { HealthProbe } from "../services/Health.js"
import { CheckoutApi, Health, Unhealthy } from "./Api.js"
import { errorResponse, internalErrorResponse } from "./ErrorResponse.js"
import { readOrderSubmission } from "./RequestBody.js"

/** The service's version, from package.json. */
export const VERSION: string = packageJson.version

/** `REQUIRE_IDEMPOTENCY_KEY` (false): when true, `POST /orders` without a key is a 400. */
export const RequireIdempotencyKey = Config.boolean("REQUIRE_IDEMPOTENCY_KEY").pipe(Config.withDefault(false))

const encodeOrder = Schema.encodeSync(Order)
const encodeUnhealthy = Schema.encodeSync(Unhealthy)

/** `POST /orders` and `GET /orders/{orderId}`: decode, call the saga, translate its outcome. */
export const OrdersLive = HttpApiBuilder.group(CheckoutApi, "orders", (handlers) =>
  Effect.gen(function* () {
    const checkout = yield* Checkout
    const requireKey = yield* RequireIdempotencyKey
    return handlers
      // Raw: the body is read and decoded here, so that every problem (content type, size, JSON,
      // each field) is reported as one validation_error in the API's own error shape.
      .handleRaw("createOrder", ({ request }) =>
        readOrderSubmission(request, { requireKey }).pipe(
          Effect.flatMap(({ idempotencyKey, request: order }) => checkout.placeOrder(order, idempotencyKey)),
          Effect.flatMap(({ order, replayed }) =>
            HttpServerResponse.json(encodeOrder(order), {
              status: replayed ? 200 : 201,
              headers: replayed ? { "idempotent-replayed": "true" } : {}
            })
          ),
          Effect.catchAll((e) => (e._tag === "HttpBodyError" ? Effect.die(e) : errorResponse(e))),
          Effect.catchAllCause(internalErrorResponse)
        )
      )
      .handle("getOrder", ({ path }) =>
        checkout.getOrder(path.orderId).pipe(
          Effect.catchAll(errorResponse),
          Effect.catchAllCause(internalErrorResponse)
        )
      )
  })
)

/**
 * `GET /health`: 200 `healthy` while the database answers (`degraded` while the inventory circuit
 * breaker is not closed), else 503 `unhealthy`.
 */
export const HealthLive = HttpApiBuilder.group(CheckoutApi, "health", (handlers) =>
  Effect.gen(function* () {
    const probe = yield* HealthProbe
    return handlers.handle("health", () =>
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

/** Every handler of `CheckoutApi`, needing `Checkout` and `HealthProbe`. */
export const HandlersLive = Layer.mergeAll(OrdersLive, HealthLive)
