import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { BookId, UserId } from "../domain/Ids.js"
import { MAX_LINES, MAX_QTY, Order, OrderStatus } from "../domain/Order.js"
import { removeDecodeErrors } from "./OpenApiCleanup.js"
import { VERSION } from "./Version.js"

// ---------------------------------------------------------------------------------------------
// Error bodies: every error is {"error", "message", "details"?, "correlationId"}
// (ARCHITECTURE.md, "Errors: one taxonomy, one body shape").
// ---------------------------------------------------------------------------------------------

const errorFields = <const Code extends string>(code: Code) => ({
  error: Schema.Literal(code),
  message: Schema.String,
  details: Schema.optional(Schema.Unknown),
  correlationId: Schema.String
})

/** 400: the request is malformed; `details` is `[{field, message}]`. */
export class ValidationErrorBody extends Schema.Class<ValidationErrorBody>("ValidationError")(
  { ...errorFields("validation_error"), details: Schema.Array(Schema.Struct({ field: Schema.String, message: Schema.String })) },
  HttpApiSchema.annotations({ status: 400, description: "The request is malformed; details name each bad field. Nothing was written." })
) {}

/** 400: the payment was declined; stock was given back; the order is PAYMENT_FAILED. */
export class PaymentFailedBody extends Schema.Class<PaymentFailedBody>("PaymentFailed")(
  { ...errorFields("payment_failed"), details: Schema.Struct({ orderId: Schema.String }) },
  HttpApiSchema.annotations({ status: 400, description: "Payment declined; every taken line was given back." })
) {}

/** 404: no such order. */
export class OrderNotFoundBody extends Schema.Class<OrderNotFoundBody>("OrderNotFound")(
  errorFields("order_not_found"),
  HttpApiSchema.annotations({ status: 404, description: "No order has this id." })
) {}

/** 409: not enough stock on hand; `details` is `[{bookId, available, requested}]` per short line. */
export class InsufficientStockBody extends Schema.Class<InsufficientStockBody>("InsufficientStock")(
  {
    ...errorFields("insufficient_stock"),
    details: Schema.Array(Schema.Struct({ bookId: Schema.String, available: Schema.Int, requested: Schema.Int }))
  },
  HttpApiSchema.annotations({ status: 409, description: "Not enough stock on hand for these lines." })
) {}

/** 422: the inventory does not know these books; `details` is `{bookIds}`. */
export class UnknownBookBody extends Schema.Class<UnknownBookBody>("UnknownBook")(
  { ...errorFields("unknown_book"), details: Schema.Struct({ bookIds: Schema.Array(Schema.String) }) },
  HttpApiSchema.annotations({ status: 422, description: "The inventory has no record of these books." })
) {}

/** 409: the idempotency key was used with a different request; `details` names the header. */
export class IdempotencyConflictBody extends Schema.Class<IdempotencyConflictBody>("IdempotencyConflict")(
  {
    ...errorFields("idempotency_conflict"),
    details: Schema.Array(Schema.Struct({ field: Schema.String, message: Schema.String }))
  },
  HttpApiSchema.annotations({ status: 409, description: "This Idempotency-Key was used with a different request." })
) {}

/** 409 with `Retry-After`: the first request with this key is still running. */
export class IdempotencyInProgressBody extends Schema.Class<IdempotencyInProgressBody>("IdempotencyInProgress")(
  errorFields("idempotency_in_progress"),
  HttpApiSchema.annotations({
    status: 409,
    description: "The first request with this Idempotency-Key is still running; retry after Retry-After seconds."
  })
) {}

/** 502 (503 with `Retry-After` while the circuit breaker is open): the inventory failed. */
export class UpstreamUnavailableBody extends Schema.Class<UpstreamUnavailableBody>("UpstreamUnavailable")(
  errorFields("upstream_unavailable"),
  HttpApiSchema.annotations({
    status: 502,
    description: "The inventory service failed; stock taken was given back. Retry with the same Idempotency-Key."
  })
) {}

/** 503 with `Retry-After`: the inventory is known to be down (circuit open) or has no free slot. */
export class UpstreamOverloadedBody extends Schema.Class<UpstreamOverloadedBody>("UpstreamOverloaded")(
  errorFields("upstream_unavailable"),
  HttpApiSchema.annotations({
    status: 503,
    description: "The inventory service is unavailable right now; retry after Retry-After seconds."
  })
) {}

/** 504: the inventory did not answer in time. */
export class UpstreamTimeoutBody extends Schema.Class<UpstreamTimeoutBody>("UpstreamTimeout")(
  errorFields("upstream_timeout"),
  HttpApiSchema.annotations({
    status: 504,
    description: "The inventory service did not answer in time; retry with the same Idempotency-Key."
  })
) {}

/** 503 with `Retry-After`: the service's database is unavailable (down or restarting). */
export class ServiceUnavailableBody extends Schema.Class<ServiceUnavailableBody>("ServiceUnavailable")(
  errorFields("service_unavailable"),
  HttpApiSchema.annotations({
    status: 503,
    description: "The database is unavailable; retry after Retry-After seconds with the same Idempotency-Key."
  })
) {}

/** 503 with `Retry-After`: this process is handling as many orders as it admits (`MAX_ORDERS_IN_FLIGHT`). */
export class OverloadedBody extends Schema.Class<OverloadedBody>("Overloaded")(
  errorFields("overloaded"),
  HttpApiSchema.annotations({
    status: 503,
    description: "Too many orders in flight in this process; nothing was read or written. Retry after Retry-After seconds."
  })
) {}

/** 500: a fault of the service, never of the request. */
export class InternalErrorBody extends Schema.Class<InternalErrorBody>("InternalError")(
  errorFields("internal_error"),
  HttpApiSchema.annotations({ status: 500, description: "A fault of the service." })
) {}

// ---------------------------------------------------------------------------------------------
// Requests and responses as they appear on the wire
// ---------------------------------------------------------------------------------------------

const Amount = Schema.Union(Schema.Number, Schema.String).annotations({
  description: "USD, a JSON number or a decimal string; >= 0, at most 2 fraction digits, at most 1000000"
})

/** The body of `POST /orders`, as documented (decoding uses `CreateOrderRequest` in the domain). */
export const CreateOrderBody = Schema.Struct({
  userId: UserId,
  items: Schema.Array(
    Schema.Struct({
      bookId: BookId,
      qty: Schema.Int.pipe(Schema.between(1, MAX_QTY)),
      unitPrice: Amount
    })
  ).pipe(Schema.minItems(1), Schema.maxItems(MAX_LINES)),
  idempotencyKey: Schema.optional(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(255)))
}).annotations({ identifier: "CreateOrderRequest", description: "A basket to turn into an order." })

/** `GET /health`: liveness. */
export class Health extends Schema.Class<Health>("Health")({
  status: Schema.Literal("healthy", "degraded"),
  version: Schema.String,
  timestamp: Schema.String,
  checks: Schema.optional(
    Schema.Struct({
      database: Schema.Literal("up"),
      inventoryCircuit: Schema.Literal("closed", "open", "half_open")
    })
  )
}) {}

/** `GET /health` when the database does not answer. */
export class Unhealthy extends Schema.Class<Unhealthy>("Unhealthy")(
  { status: Schema.Literal("unhealthy"), version: Schema.String, timestamp: Schema.String, reason: Schema.String },
  HttpApiSchema.annotations({ status: 503 })
) {}

const CircuitState = Schema.Literal("closed", "open", "half_open")

/** `GET /health/ready`: readiness with each dependency's state. */
export class Readiness extends Schema.Class<Readiness>("Readiness")({
  status: Schema.Literal("ready", "degraded"),
  version: Schema.String,
  timestamp: Schema.String,
  checks: Schema.Struct({
    database: Schema.Literal("up"),
    inventory: Schema.Literal("reachable", "unreachable"),
    inventoryCircuit: CircuitState
  })
}) {}

/** `GET /health/ready` when the database does not answer. */
export class NotReady extends Schema.Class<NotReady>("NotReady")(
  {
    status: Schema.Literal("unready"),
    version: Schema.String,
    timestamp: Schema.String,
    reason: Schema.String,
    checks: Schema.Struct({
      database: Schema.Literal("down"),
      inventory: Schema.Literal("reachable", "unreachable"),
      inventoryCircuit: CircuitState
    })
  },
  HttpApiSchema.annotations({ status: 503 })
) {}

// ---------------------------------------------------------------------------------------------
// The API
// ---------------------------------------------------------------------------------------------

const IdempotencyHeaders = Schema.Struct({
  "idempotency-key": Schema.optional(Schema.String).annotations({
    description:
      "Idempotency-Key (IETF draft): 1-255 characters, scoped to userId, kept 24 h. Same key + same request replays the response."
  }),
  "x-request-id": Schema.optional(Schema.String).annotations({ description: "Correlation id, echoed back." })
})

/** Placing and reading orders. */
export class OrdersGroup extends HttpApiGroup.make("orders")
  .add(
    HttpApiEndpoint.post("createOrder", "/orders")
      .setPayload(CreateOrderBody)
      .setHeaders(IdempotencyHeaders)
      .addSuccess(Order.annotations({ description: "The order, placed and CONFIRMED" }), { status: 201 })
      // a replay: the first answer's order again, with `Idempotent-Replayed: true`
      .addSuccess(Order.annotations({ description: "A replay of this Idempotency-Key's first answer (header Idempotent-Replayed: true)" }), { status: 200 })
      .addError(ValidationErrorBody)
      .addError(PaymentFailedBody)
      .addError(InsufficientStockBody)
      .addError(UnknownBookBody)
      .addError(IdempotencyConflictBody)
      .addError(IdempotencyInProgressBody)
      .addError(UpstreamUnavailableBody)
      .addError(UpstreamOverloadedBody)
      .addError(UpstreamTimeoutBody)
      .addError(ServiceUnavailableBody)
      .addError(OverloadedBody)
      .addError(InternalErrorBody)
      .annotate(OpenApi.Summary, "Place an order")
      .annotate(
        OpenApi.Description,
        "Checks and takes stock, charges payment and confirms the order, exactly once per Idempotency-Key. " +
          "A replay answers 200 with the same body and `Idempotent-Replayed: true`."
      )
  )
  .add(
    HttpApiEndpoint.get("getOrder", "/orders/:orderId")
      .setPath(Schema.Struct({ orderId: Schema.String }))
      .addSuccess(Order)
      .addError(OrderNotFoundBody)
      .addError(ServiceUnavailableBody)
      .addError(InternalErrorBody)
      .annotate(OpenApi.Summary, "Read an order")
  ) {}

/** Liveness and readiness. */
export class HealthGroup extends HttpApiGroup.make("health")
  .add(
    HttpApiEndpoint.get("health", "/health")
      .addSuccess(Health)
      .addError(Unhealthy)
      .annotate(OpenApi.Summary, "Liveness: healthy while the database answers")
  )
  .add(
    HttpApiEndpoint.get("ready", "/health/ready")
      .addSuccess(Readiness)
      .addError(NotReady)
      .annotate(
        OpenApi.Summary,
        "Readiness: the database answers (else 503); the inventory's reachability and circuit breaker are reported"
      )
  ) {}

/** Prometheus metrics. */
export class MetricsGroup extends HttpApiGroup.make("metrics").add(
  HttpApiEndpoint.get("metrics", "/metrics")
    .addSuccess(HttpApiSchema.Text({ contentType: "text/plain; version=0.0.4; charset=utf-8" }))
    .annotate(OpenApi.Summary, "Metrics in the Prometheus text format")
) {}

/** The BookVerse Checkout API: the public contract, from which `/openapi.json` is derived. */
export class CheckoutApi extends HttpApi.make("checkout")
  .add(OrdersGroup)
  .add(HealthGroup)
  .add(MetricsGroup)
  .annotate(OpenApi.Title, "BookVerse Checkout")
  .annotate(OpenApi.Version, VERSION)
  .annotate(OpenApi.Transform, removeDecodeErrors)
  .annotate(
    OpenApi.Description,
    "Turns a reader's basket into an order exactly once. Amounts are USD with at most 2 fraction digits. " +
      `Order statuses: ${OrderStatus.literals.join(", ")}.`
  ) {}
