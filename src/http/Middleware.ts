import { type HttpApp, HttpServerError, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { randomUUID } from "node:crypto"
import { withCorrelationId } from "../services/Correlation.js"
import { internalErrorResponse, routeNotFoundResponse } from "./ErrorResponse.js"

const ACCEPTED_ID = /^[A-Za-z0-9._:\-]{1,128}$/

/**
 * Wraps the whole app: takes the correlation id from `X-Request-Id` (generated when absent or
 * unusable) for logs, inventory calls and the response header; answers unknown routes and
 * defects in the API's error shape; writes one access-log line per request (method, path,
 * status, duration in ms).
 */
export const requestMiddleware = (app: HttpApp.Default): HttpApp.Default =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const incoming = request.headers["x-request-id"]
    const correlationId = incoming !== undefined && ACCEPTED_ID.test(incoming) ? incoming : randomUUID()
    const started = performance.now()
    const response = yield* app.pipe(
      Effect.catchIf(
        (e: unknown) => e instanceof HttpServerError.RouteNotFound,
        () => routeNotFoundResponse(request.method, request.url)
      ),
      Effect.catchAllCause(internalErrorResponse),
      withCorrelationId(correlationId)
    )
    yield* Effect.logInfo("request").pipe(
      Effect.annotateLogs({
        correlationId,
        method: request.method,
        path: request.url.split("?")[0],
        status: response.status,
        durationMs: Math.round((performance.now() - started) * 10) / 10
      })
    )
    return HttpServerResponse.setHeader(response, "x-request-id", correlationId)
  })
