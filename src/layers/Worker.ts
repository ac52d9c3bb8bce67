import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { SqlClient } from "@effect/sql"
import { Cause, Config, ConfigError, Duration, Effect, Either, Layer, Option } from "effect"
import { randomUUID } from "node:crypto"
import { createServer } from "node:http"
import { hostname } from "node:os"
import { EventPublisherLive } from "../services/EventPublisher.js"
import { OutboxLive } from "../services/Outbox.js"
import { OutboxWorker, OutboxWorkerLive, type OutboxWorkerOptions } from "../services/OutboxWorker.js"
import { DatabaseLive } from "./Database.js"
import { VERSION } from "../http/Version.js"
import { LoggingLive } from "./Logging.js"
import { PrometheusMetrics, TelemetryLive } from "./Telemetry.js"

// Each check runs before its default is attached, so that a bad value's error names the variable.
const seconds = (name: string, fallback: number, min: number) =>
  Config.number(name).pipe(
    Config.validate({ message: `must be a number of seconds >= ${min}`, validation: (n) => Number.isFinite(n) && n >= min }),
    Config.withDefault(fallback),
    Config.map((s) => Duration.millis(Math.round(s * 1000)))
  )

const positiveInt = (name: string, fallback: number, max: number) =>
  Config.integer(name).pipe(
    Config.validate({ message: `must be an integer from 1 to ${max}`, validation: (n) => n >= 1 && n <= max }),
    Config.withDefault(fallback)
  )

/**
 * The worker's tuning from the environment (a bad value names its variable):
 *
 * | variable | default | meaning |
 * | --- | --- | --- |
 * | OUTBOX_WORKER_ID | `<host>-<pid>-<random>` | `claimed_by` of this worker's leases |
 * | OUTBOX_BATCH_SIZE | 100 | rows claimed and published concurrently per batch (1..1000) |
 * | OUTBOX_LEASE_SECONDS | 60 | how long a claimed row is this worker's; at least 2 x the publish timeout |
 * | OUTBOX_PUBLISH_TIMEOUT_SECONDS | 10 | deadline of one publish attempt |
 * | OUTBOX_POLL_INTERVAL_SECONDS | 0.5 | pause between polls when the outbox had no full batch |
 * | OUTBOX_MAX_ATTEMPTS | 10 | failed attempts after which a row is parked dead (1..1000) |
 * | OUTBOX_BACKOFF_BASE_SECONDS | 1 | wait after the first failure, doubling per failure |
 * | OUTBOX_BACKOFF_MAX_SECONDS | 300 | longest wait between attempts |
 * | OUTBOX_STATS_LOG_SECONDS | 60 | how often the counters are logged |
 * | OUTBOX_TEST_CRASH_AFTER_PUBLISH | unset | TEST HOOK, never set in production: after this many publishes the process kills itself with SIGKILL between publish and mark |
 */
export const WorkerConfig: Config.Config<OutboxWorkerOptions> = Config.all({
  workerId: Config.string("OUTBOX_WORKER_ID").pipe(
    Config.validate({ message: "must not be empty", validation: (s) => s.trim() !== "" }),
    Config.withDefault(`${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`)
  ),
  batchSize: positiveInt("OUTBOX_BATCH_SIZE", 100, 1000),
  lease: seconds("OUTBOX_LEASE_SECONDS", 60, 0.1),
  publishTimeout: seconds("OUTBOX_PUBLISH_TIMEOUT_SECONDS", 10, 0.05),
  pollInterval: seconds("OUTBOX_POLL_INTERVAL_SECONDS", 0.5, 0.01),
  maxAttempts: positiveInt("OUTBOX_MAX_ATTEMPTS", 10, 1000),
  backoffBase: seconds("OUTBOX_BACKOFF_BASE_SECONDS", 1, 0.01),
  backoffMax: seconds("OUTBOX_BACKOFF_MAX_SECONDS", 300, 0.01),
  statsInterval: seconds("OUTBOX_STATS_LOG_SECONDS", 60, 1),
  crashAfterPublish: Config.option(
    Config.integer("OUTBOX_TEST_CRASH_AFTER_PUBLISH").pipe(
      Config.validate({ message: "must be an integer >= 1", validation: (n) => n >= 1 })
    )
  )
}).pipe(
  Config.mapOrFail((c): Either.Either<OutboxWorkerOptions, ConfigError.ConfigError> => {
    // A row must stay leased for as long as its publish may take, plus its mark.
    if (Duration.lessThan(c.lease, Duration.times(c.publishTimeout, 2))) {
      return Either.left(
        ConfigError.InvalidData(["OUTBOX_LEASE_SECONDS"], "must be at least twice OUTBOX_PUBLISH_TIMEOUT_SECONDS")
      )
    }
    if (Duration.lessThan(c.backoffMax, c.backoffBase)) {
      return Either.left(
        ConfigError.InvalidData(["OUTBOX_BACKOFF_MAX_SECONDS"], "must be at least OUTBOX_BACKOFF_BASE_SECONDS")
      )
    }
    const options: OutboxWorkerOptions = {
      workerId: c.workerId,
      batchSize: c.batchSize,
      lease: c.lease,
      publishTimeout: c.publishTimeout,
      pollInterval: c.pollInterval,
      maxAttempts: c.maxAttempts,
      backoff: { base: c.backoffBase, max: c.backoffMax, jitter: true },
      statsInterval: c.statsInterval
    }
    if (Option.isNone(c.crashAfterPublish)) return Either.right(options)
    const crashAfter = c.crashAfterPublish.value
    return Either.right({
      ...options,
      afterPublish: (_event, published) =>
        published >= crashAfter ? Effect.sync(() => process.kill(process.pid, "SIGKILL")) : Effect.void
    })
  })
)

/** `PORT` (8002) and `HOST` (0.0.0.0) of the worker's health endpoint. */
export const WorkerListenConfig = Config.all({
  port: Config.port("PORT").pipe(Config.withDefault(8002)),
  host: Config.string("HOST").pipe(Config.withDefault("0.0.0.0"))
})

/**
 * `GET /metrics` (Prometheus text: `outbox_events_published_total`, `outbox_events_failed_total`,
 * `outbox_events_dead_total`, `outbox_lag_seconds`, process metrics) and `GET /health` on the
 * `OutboxWorker` in context: 200 `{"status": "healthy", "workerId",
 * "publisher", "events": {published, failed, dead, duplicates, leaseLost}, "outbox": {pending,
 * dead, oldestPendingAt, lagSeconds}}`, or 503 `{"status": "unhealthy", "reason"}` when the
 * database does not answer within 1 s.
 */
export const WorkerHealthRouter = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/metrics",
    Effect.flatMap(PrometheusMetrics, (metrics) => metrics.render).pipe(
      Effect.map((text) => HttpServerResponse.text(text, { contentType: "text/plain; version=0.0.4; charset=utf-8" }))
    )
  ),
  HttpRouter.get(
    "/health",
    Effect.gen(function* () {
      const worker = yield* OutboxWorker
      const status = yield* worker.status.pipe(
        Effect.timeoutFail({ duration: Duration.seconds(1), onTimeout: () => "database did not answer within 1s" }),
        Effect.sandbox,
        Effect.either
      )
      return Either.match(status, {
        onLeft: (cause) =>
          HttpServerResponse.unsafeJson(
            { status: "unhealthy", reason: Cause.pretty(cause).split("\n")[0] ?? "unknown" },
            { status: 503 }
          ),
        onRight: (s) => HttpServerResponse.unsafeJson({ status: "healthy", ...s })
      })
    })
  )
)

/** Fails start-up with a clear message when the outbox table lacks migration 0002's columns. */
const RequireMigrated = Layer.effectDiscard(
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT claimed_by, lease_until, dead_at FROM outbox_events WHERE 1 = 0`).pipe(
    Effect.orDieWith(
      (e) => new Error(`the database is not migrated (run \`npm run migrate\` first): ${e.message}`)
    )
  )
)

/**
 * The worker process: JSON logging, the database from `DATABASE_URL` (never migrated here: the
 * migrations job or the api does that), the `EventPublisher` the environment selects, the outbox
 * worker (`WorkerConfig`), metrics and traces (`TelemetryLive`), and `GET /health` and
 * `GET /metrics` on `HOST:PORT` (default 8002).
 */
export const WorkerLive = Layer.unwrapEffect(
  Effect.map(Effect.all([WorkerConfig, WorkerListenConfig]), ([options, listen]) =>
    HttpServer.serve(WorkerHealthRouter).pipe(
      HttpServer.withLogAddress,
      Layer.provide(NodeHttpServer.layer(createServer, listen)),
      Layer.provide(OutboxWorkerLive(options)),
      Layer.provide(Layer.merge(OutboxLive, EventPublisherLive)),
      Layer.provide(RequireMigrated),
      Layer.provide(DatabaseLive({ migrateOnStart: false }))
    )
  )
).pipe(Layer.provide(TelemetryLive(VERSION)), Layer.provide(LoggingLive))
