import { HttpApiBuilder, HttpApiScalar, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Config, Layer } from "effect"
import { createServer } from "node:http"
import { CheckoutApi } from "../http/Api.js"
import { HandlersLive, VERSION } from "../http/Handlers.js"
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

/** `MIGRATE_ON_START` (true): apply migrations when the api starts. */
export const MigrateOnStart = Config.boolean("MIGRATE_ON_START").pipe(Config.withDefault(true))

/**
 * The HTTP API (`CheckoutApi`) with `/openapi.json` and the API reference at `/docs`, served by
 * whatever `HttpServer` is provided; needs `Checkout` and `HealthProbe`.
 */
export const HttpApiLive = HttpApiBuilder.serve().pipe(
  Layer.provide(HttpApiBuilder.middleware(requestMiddleware)),
  Layer.provide(HttpApiScalar.layer({ path: "/docs" })),
  Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
  Layer.provide(HttpApiBuilder.api(CheckoutApi).pipe(Layer.provide(HandlersLive)))
)

/**
 * The whole api process: JSON logging, the database from `DATABASE_URL` (migrated when
 * `MIGRATE_ON_START`), the saga and its live services, the recovery loop, and the Node HTTP
 * server on `HOST:PORT`; metrics and traces per `TelemetryLive`.
 */
export const ApiLive = Layer.unwrapEffect(
  Config.all({ listen: ListenConfig(8000), migrateOnStart: MigrateOnStart }).pipe(
    Config.map(({ listen, migrateOnStart }) =>
      Layer.merge(HttpApiLive.pipe(HttpServer.withLogAddress, Layer.provide(NodeHttpServer.layer(createServer, listen))), RecoveryLoopLive).pipe(
        Layer.provide(CheckoutServicesLive),
        Layer.provide(DatabaseLive({ migrateOnStart }))
      )
    )
  )
).pipe(Layer.provide(TelemetryLive(VERSION)), Layer.provide(LoggingLive))
