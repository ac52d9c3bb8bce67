import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Config, Effect, Layer } from "effect"
import { createServer } from "node:http"
import { CheckoutApi } from "../http/Api.js"
import { HandlersLive, OrderRoutes, OrderRoutesLive, type OrderRoutesService, VERSION } from "../http/Handlers.js"
import { requestMiddleware } from "../http/Middleware.js"
import { DatabaseLive } from "./Database.js"
import { LoggingLive } from "./Logging.js"
import { TelemetryLive } from "./Telemetry.js"
import { RecoveryLoopLive } from "../services/Recovery.js"
import { CheckoutServicesLive } from "./Services.js"

/** `PORT` (8000) and `HOST` (0.0.0.0) the api listens on. */
export const ListenConfig = (defaultPort: number) =>
  Config.all({
    port: Config.port("PORT").pipe(Config.withDefault(defaultPort)),
    host: Config.string("HOST").pipe(Config.withDefault("0.0.0.0"))
  })

/**
 * The Node HTTP server: a request must arrive whole within 30 s (headers within 10 s), so slow
 * clients cannot hold connections; a request Node cannot parse is answered in the API's error
 * shape before the connection closes.
 */
export const makeNodeServer = () => {
  const server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000, keepAliveTimeout: 5_000 })
  server.on("clientError", (error: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || error.code === "ECONNRESET") return void socket.destroy()
    const status = error.code === "HPE_HEADER_OVERFLOW" ? 431 : error.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400
    const body = JSON.stringify({
      error: "validation_error",
      message: status === 431 ? "Request headers are too large" : status === 408 ? "The request took too long to arrive" : "Malformed HTTP request",
      correlationId: ""
    })
    socket.end(
      `HTTP/1.1 ${status} ${status === 431 ? "Request Header Fields Too Large" : status === 408 ? "Request Timeout" : "Bad Request"}\r\n` +
        `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`
    )
  })
  return server
}

/** `MIGRATE_ON_START` (true): apply migrations when the api starts. */
export const MigrateOnStart = Config.boolean("MIGRATE_ON_START").pipe(Config.withDefault(true))

/**
 * `GET /docs`: the Scalar API reference of `CheckoutApi`, as `@effect/platform`'s
 * `HttpApiScalar` renders it. The module carries Scalar's whole script (3.4 MB of source, ~13 MB of
 * heap), so it is loaded on the first request for the page, not at start-up.
 */
export const LazyDocsLive = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function* () {
    const page = yield* Effect.cached(
      Effect.gen(function* () {
        const { layerHttpLayerRouter } = yield* Effect.promise(() => import("@effect/platform/HttpApiScalar"))
        const docs = yield* HttpLayerRouter.make
        yield* Layer.buildWithScope(
          layerHttpLayerRouter({ api: CheckoutApi, path: "/docs" }).pipe(Layer.provide(Layer.succeed(HttpLayerRouter.HttpRouter, docs))),
          yield* Effect.scope
        )
        return docs.asHttpEffect()
      }).pipe(Effect.scoped)
    )
    yield* router.get("/docs", Effect.flatMap(page, (app) => Effect.scoped(app)).pipe(Effect.orDie))
  })
)

/** `/orders/{orderId}` with a plain id segment (no percent-escapes, no query): the fast path's form. */
const ORDER_URL = /^\/orders\/([A-Za-z0-9._~-]+)$/

/**
 * The order routes served before the `HttpApi` router, for the URLs in their plain form:
 * `POST /orders` (with or without a query) and `GET /orders/{orderId}`. They answer exactly as
 * through the router (the `HttpApi` group calls the same `OrderRoutes`), without its per-request
 * work (route lookup, the route's context, parsed search parameters, the endpoint's header
 * decoding and error encoding: ~20% of the CPU of a `GET /orders/{orderId}`). Any other form of
 * those URLs (a trailing slash, an escaped id, HEAD) goes through the router as before.
 */
const withOrderRoutes =
  (routes: OrderRoutesService) =>
  (api: HttpApp.Default): HttpApp.Default =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const { method, url } = request
      // interruptible, as the router makes every handler: the platform runs the app uninterruptibly,
      // so that a client that hangs up interrupts the handler (499) and the saga it forks (which
      // inherits the flags) can be interrupted at shutdown
      if (method === "POST" && (url === "/orders" || url.startsWith("/orders?"))) return Effect.interruptible(routes.createOrder(request))
      if (method === "GET") {
        const id = ORDER_URL.exec(url)?.[1]
        if (id !== undefined) return Effect.interruptible(routes.getOrder(id))
      }
      return api
    })

/**
 * The HTTP API (`CheckoutApi`) with `/openapi.json` and the API reference at `/docs`, served by
 * whatever `HttpServer` is provided, every request through `requestMiddleware` (the API's
 * middleware, around the router and the fast order routes); needs `Checkout` and `HealthProbe`.
 */
export const HttpApiLive = HttpApiBuilder.serve().pipe(
  Layer.provide(
    HttpApiBuilder.middleware(Effect.map(OrderRoutes, (routes) => (api: HttpApp.Default) => requestMiddleware(withOrderRoutes(routes)(api))))
  ),
  Layer.provide(LazyDocsLive),
  Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
  Layer.provide(HttpApiBuilder.api(CheckoutApi).pipe(Layer.provide(HandlersLive))),
  Layer.provide(OrderRoutesLive)
)

/**
 * The whole api process: JSON logging, the database from `DATABASE_URL` (migrated when
 * `MIGRATE_ON_START`), the saga and its live services, the recovery loop, and the Node HTTP
 * server on `HOST:PORT`; metrics and traces per `TelemetryLive`.
 */
export const ApiLive = Layer.unwrapEffect(
  Config.all({ listen: ListenConfig(8000), migrateOnStart: MigrateOnStart }).pipe(
    Config.map(({ listen, migrateOnStart }) =>
      Layer.merge(HttpApiLive.pipe(HttpServer.withLogAddress, Layer.provide(NodeHttpServer.layer(makeNodeServer, listen))), RecoveryLoopLive).pipe(
        Layer.provide(CheckoutServicesLive),
        Layer.provide(DatabaseLive({ migrateOnStart }))
      )
    )
  )
).pipe(Layer.provide(TelemetryLive(VERSION)), Layer.provide(LoggingLive))
