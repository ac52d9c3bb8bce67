import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { SqlError } from "@effect/sql/SqlError"
import { Cause, Chunk, Effect } from "effect"
import type { CheckoutError, FieldIssue, OrderNotFound } from "../domain/Errors.js"
import { currentCorrelationId } from "../services/Correlation.js"

/** An error body as the API sends it. */
export interface ErrorBody {
  readonly error: string
  readonly message: string
  readonly details?: unknown
  readonly correlationId: string
}

const respond = (status: number, body: Omit<ErrorBody, "correlationId">, headers: Record<string, string> = {}) =>
  Effect.map(currentCorrelationId, (correlationId) =>
    HttpServerResponse.unsafeJson({ ...body, correlationId } satisfies ErrorBody, { status, headers })
  )

/** A 400 `validation_error` naming each bad field. */
export const validationResponse = (message: string, details: ReadonlyArray<FieldIssue>, status = 400) =>
  respond(status, { error: "validation_error", message, details })

/**
 * The response for a domain error: its code and status from the taxonomy (ARCHITECTURE.md),
 * `Retry-After` (seconds) where the client should retry later, `Idempotent-Replayed` on a replay.
 */
export const errorResponse = (e: CheckoutError | OrderNotFound): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
  switch (e._tag) {
    case "ValidationError":
      return validationResponse(e.message, e.details)
    case "PaymentFailed":
      return respond(
        400,
        { error: "payment_failed", message: `Payment was declined: ${e.reason}`, details: { orderId: e.orderId } },
        e.replayed ? { "idempotent-replayed": "true" } : {}
      )
    case "OrderNotFound":
      return respond(404, { error: "order_not_found", message: `No order has the id ${JSON.stringify(e.orderId)}` })
    case "InsufficientStock":
      return respond(409, {
        error: "insufficient_stock",
        message: "Not enough stock on hand for some lines",
        details: e.details
      })
    case "UnknownBook":
      return respond(422, {
        error: "unknown_book",
        message: `The inventory has no record of: ${e.bookIds.join(", ")}`,
        details: { bookIds: e.bookIds }
      })
    case "IdempotencyConflict":
      return respond(409, {
        error: "idempotency_conflict",
        message: "This Idempotency-Key was already used with a different request",
        details: [{ field: "Idempotency-Key", message: "was already used with a different request" }]
      })
    case "IdempotencyInProgress":
      return respond(
        409,
        { error: "idempotency_in_progress", message: "A request with this Idempotency-Key is still being processed" },
        { "retry-after": String(e.retryAfterSeconds) }
      )
    case "UpstreamUnavailable":
      return e.retryAfterSeconds === undefined
        ? respond(502, {
            error: "upstream_unavailable",
            message: `The inventory service failed: ${e.reason}. Retry with the same Idempotency-Key.`
          })
        : respond(
            503,
            { error: "upstream_unavailable", message: `The inventory service is unavailable: ${e.reason}` },
            { "retry-after": String(e.retryAfterSeconds) }
          )
    case "UpstreamTimeout":
      return respond(504, { error: "upstream_timeout", message: `The inventory service timed out: ${e.reason}` })
  }
}

const isSqlError = (u: unknown): boolean => u instanceof SqlError

/** Whether a request failed because the database failed (down or restarting). */
export const isDatabaseOutage = (cause: Cause.Cause<unknown>): boolean =>
  Cause.defects(cause).pipe(Chunk.some(isSqlError)) || Cause.failures(cause).pipe(Chunk.some(isSqlError))

/**
 * For a defect: 503 `service_unavailable` with `Retry-After` when the database failed (it is
 * down or restarting; the request may be retried with the same Idempotency-Key), else 500
 * `internal_error`. The cause is logged, never sent.
 */
export const internalErrorResponse = (cause: Cause.Cause<unknown>): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  Cause.isInterruptedOnly(cause)
    ? // the client hung up; its saga goes on detached, and nobody reads this answer
      Effect.as(
        Effect.logDebug("client closed the connection before the answer"),
        HttpServerResponse.empty({ status: 499 })
      )
    : isDatabaseOutage(cause)
    ? Effect.zipRight(
        Effect.logError("request failed: database unavailable", cause),
        respond(
          503,
          { error: "service_unavailable", message: "The database is unavailable; retry shortly with the same Idempotency-Key" },
          { "retry-after": "2" }
        )
      )
    : Effect.zipRight(
        Effect.logError("request failed with a defect", cause),
        respond(500, { error: "internal_error", message: "An internal error occurred" })
      )

/**
 * 503 `overloaded` with `Retry-After: 1`: this process already handles `limit` orders
 * (`MAX_ORDERS_IN_FLIGHT`); the request was not read and nothing was written.
 */
export const overloadedResponse = (limit: number) =>
  respond(
    503,
    {
      error: "overloaded",
      message: `The service is already handling ${limit} orders; retry after Retry-After seconds with the same Idempotency-Key`
    },
    { "retry-after": "1" }
  )

/** 404 for a path no route serves. */
export const routeNotFoundResponse = (method: string, url: string) =>
  respond(404, { error: "not_found", message: `No route for ${method} ${url}` })

/** 405 with `Allow` for a path served only with other methods. */
export const methodNotAllowedResponse = (method: string, path: string, allowed: ReadonlyArray<string>) =>
  respond(
    405,
    { error: "method_not_allowed", message: `${method} is not allowed on ${path}; use ${allowed.join(" or ")}` },
    { allow: allowed.join(", ") }
  )
