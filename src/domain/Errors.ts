import { Schema } from "effect"

/** One field-level problem: a dotted path such as `items[0].qty` and what is wrong with it. */
export const FieldIssue = Schema.Struct({ field: Schema.String, message: Schema.String })
export type FieldIssue = typeof FieldIssue.Type

/** A short line where the inventory has fewer copies on hand than the order asks for. */
export const StockShortfall = Schema.Struct({
  bookId: Schema.String,
  available: Schema.Int,
  requested: Schema.Int
})
export type StockShortfall = typeof StockShortfall.Type

/** 400 `validation_error`: the request is malformed; `details` names each bad field. Nothing was written. */
export class ValidationError extends Schema.TaggedError<ValidationError>()("ValidationError", {
  message: Schema.String,
  details: Schema.Array(FieldIssue)
}) {}

/** 400 `payment_failed`: the payment was declined; every taken line was given back. */
export class PaymentFailed extends Schema.TaggedError<PaymentFailed>()("PaymentFailed", {
  orderId: Schema.String,
  reason: Schema.String,
  /** True when this is an idempotency key's stored outcome answered again. */
  replayed: Schema.optionalWith(Schema.Boolean, { default: () => false })
}) {}

/** 404 `order_not_found`: no order has this id (a non-UUID id included). */
export class OrderNotFound extends Schema.TaggedError<OrderNotFound>()("OrderNotFound", {
  orderId: Schema.String
}) {}

/**
 * 409 `insufficient_stock`: at pre-check, every short line with what is on hand; after a lost
 * race at the take, the line whose take the inventory refused (INVENTORY_CONTRACT.md: 400
 * "would result in negative inventory").
 */
export class InsufficientStock extends Schema.TaggedError<InsufficientStock>()("InsufficientStock", {
  details: Schema.Array(StockShortfall)
}) {}

/** 422 `unknown_book`: the inventory has no record for these books (its 404). */
export class UnknownBook extends Schema.TaggedError<UnknownBook>()("UnknownBook", {
  bookIds: Schema.Array(Schema.String)
}) {}

/** 409 `idempotency_conflict`: the key was used before with a different request (Idempotency-Key draft). */
export class IdempotencyConflict extends Schema.TaggedError<IdempotencyConflict>()("IdempotencyConflict", {
  key: Schema.String
}) {}

/** 409 `idempotency_in_progress`: the first request with this key is still running; retry after `retryAfterSeconds`. */
export class IdempotencyInProgress extends Schema.TaggedError<IdempotencyInProgress>()(
  "IdempotencyInProgress",
  { key: Schema.String, retryAfterSeconds: Schema.Int }
) {}

/**
 * 502 `upstream_unavailable` (503 with `Retry-After` when `retryAfterSeconds` is set, as while the
 * circuit breaker is open): the inventory failed after the retries the policy allows.
 */
export class UpstreamUnavailable extends Schema.TaggedError<UpstreamUnavailable>()("UpstreamUnavailable", {
  reason: Schema.String,
  retryAfterSeconds: Schema.optional(Schema.Int)
}) {}

/** 504 `upstream_timeout`: the inventory did not answer within the deadline. */
export class UpstreamTimeout extends Schema.TaggedError<UpstreamTimeout>()("UpstreamTimeout", {
  reason: Schema.String
}) {}

/** Every failure the order saga can end with, besides defects (which are 500 `internal_error`). */
export type CheckoutError =
  | ValidationError
  | PaymentFailed
  | InsufficientStock
  | UnknownBook
  | IdempotencyConflict
  | IdempotencyInProgress
  | UpstreamUnavailable
  | UpstreamTimeout
