import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Cause, Context, Effect, Option } from "effect"
import { recordHttpRequestNow } from "../services/Metrics.js"
import { randomUUID } from "node:crypto"
import { annotateFiberLogs, setCorrelationId } from "../services/Correlation.js"
import { internalErrorResponse, methodNotAllowedResponse, routeNotFoundResponse } from "./ErrorResponse.js"

const ACCEPTED_ID = /^[A-Za-z0-9._:\-]{1,128}$/

/** The API's route templates with their methods; anything else is `unmatched`. */
const ROUTES: ReadonlyArray<readonly [RegExp, string, ReadonlyArray<string>]> = [
  [/^\/orders$/, "/orders", ["POST"]],
  [/^\/orders\/[^/]+$/, "/orders/{orderId}", ["GET"]],
  [/^\/health$/, "/health", ["GET"]],
  [/^\/health\/ready$/, "/health/ready", ["GET"]],
  [/^\/metrics$/, "/metrics", ["GET"]],
  [/^\/openapi\.json$/, "/openapi.json", ["GET"]],
  [/^\/docs(\/.*)?$/, "/docs", ["GET"]]
]

/** `//orders/x/` -> `/orders/x`: the path as the router matches it. */
const normalizePath = (url: string): string => (url.split("?")[0] ?? "").replace(/\/{2,}/g, "/").replace(/(.)\/$/, "$1")

const routeOf = (path: string) => ROUTES.find(([re]) => re.test(normalizePath(path)))

/** The route template of a path, so metric labels never carry ids. */
export const routeTemplate = (path: string): string => routeOf(path)?.[1] ?? "unmatched"

/**
 * Wraps the whole app: takes the correlation id from `X-Request-Id` (generated when absent or
 * unusable) for logs, inventory calls and the response header; answers unknown routes and
 * defects in the API's error shape; writes one access-log line per request (method, route
 * template, status, duration in ms) and records `http_server_request_duration_seconds`.
 */
export const requestMiddleware = (app: HttpApp.Default): HttpApp.Default =>
  Effect.withFiberRuntime((fiber) => {
    const request = Context.unsafeGet(fiber.currentContext, HttpServerRequest.HttpServerRequest)
    const incoming = request.headers["x-request-id"]
    const correlationId = incoming !== undefined && ACCEPTED_ID.test(incoming) ? incoming : randomUUID()
    const started = performance.now()
    // the server forks a fiber per request: the id is set on it for good, not scoped
    return setCorrelationId(correlationId).pipe(
      // (one handler for both: an unknown route, and any defect)
      Effect.zipRight(Effect.catchAllCause(app, (cause) => {
        const failure: Option.Option<unknown> = Cause.failureOption(cause)
        if (Option.isNone(failure) || !(failure.value instanceof HttpServerError.RouteNotFound)) return internalErrorResponse(cause)
        const known = routeOf(request.url)
        return known !== undefined && !known[2].includes(request.method) && request.method !== "HEAD"
          ? methodNotAllowedResponse(request.method, known[1], known[2])
          : routeNotFoundResponse(request.method, request.url)
      })),
      Effect.flatMap((response) => {
        const durationMs = performance.now() - started
        const route = routeTemplate(request.url)
        recordHttpRequestNow(request.method, route, response.status, durationMs / 1000)
        // probes and scrapes come every few seconds: their lines are DEBUG, everything else INFO
        const log = route === "/health" || route === "/health/ready" || route === "/metrics" ? Effect.logDebug : Effect.logInfo
        // the request's last log line: its annotations are set on the fiber, which ends with it
        return annotateFiberLogs({
          method: request.method,
          route,
          status: response.status,
          durationMs: Math.round(durationMs * 10) / 10
        }).pipe(
          Effect.zipRight(log("request")),
          Effect.as(HttpServerResponse.setHeader(response, "x-request-id", correlationId))
        )
      })
    )
  })
