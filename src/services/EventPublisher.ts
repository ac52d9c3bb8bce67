import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import {
  Config,
  ConfigError,
  Context,
  Duration,
  Effect,
  Either,
  Layer,
  Option,
  Schedule,
  Runtime,
  Schema
} from "effect"
import { connect, headers, NatsError, nanos, type NatsConnection } from "nats"
import type { CloudEvent } from "../domain/Events.js"

/** A publish that did not certainly reach its destination; the outbox worker retries it later. */
export class EventPublishFailed extends Schema.TaggedError<EventPublishFailed>()("EventPublishFailed", {
  eventId: Schema.String,
  reason: Schema.String
}) {}

/** The destination could not be set up at start-up (NATS unreachable, stream unusable). */
export class EventPublisherUnavailable extends Schema.TaggedError<EventPublisherUnavailable>()(
  "EventPublisherUnavailable",
  { reason: Schema.String }
) {}

/** Where events go, as configured (for logs and the worker's health). */
export type PublisherTarget =
  | { readonly kind: "nats"; readonly servers: string; readonly stream: string; readonly subject: string }
  | { readonly kind: "webhook"; readonly url: string }
  | { readonly kind: "none" }

/** What the destination said about a published event. */
export interface PublishReceipt {
  /** True when the destination already had this event id (NATS JetStream's duplicate window). */
  readonly duplicate: boolean
}

/**
 * Sends a CloudEvent to the platform. Delivery is at least once: the same event (same `id`) may be
 * sent again after a crash or a lost answer, and the destination deduplicates by `id`.
 */
export class EventPublisher extends Context.Tag("bookverse/EventPublisher")<
  EventPublisher,
  {
    readonly target: PublisherTarget
    /**
     * Sends `event` (structured JSON mode). Succeeds once the destination has it; fails with
     * `EventPublishFailed` when that is not certain. Sets no deadline of its own: the caller does.
     */
    readonly publish: (event: CloudEvent) => Effect.Effect<PublishReceipt, EventPublishFailed>
  }
>() {}

/** The CloudEvents JSON format's media type (CloudEvents HTTP and NATS protocol bindings, structured mode). */
const CLOUDEVENTS_JSON = "application/cloudevents+json; charset=utf-8"

const describe = (e: unknown): string => (e instanceof Error ? e.message : String(e))

// ---------------------------------------------------------------------------------------------
// NATS JetStream
// ---------------------------------------------------------------------------------------------

/** The JetStream destination: servers, stream (created if missing) and subject. */
export interface NatsOptions {
  /** `EVENTS_NATS_URL`: one server URL or a comma-separated list (`nats://127.0.0.1:4222`). */
  readonly servers: string
  /** `EVENTS_NATS_STREAM` (`BOOKVERSE_ORDERS`). */
  readonly stream: string
  /** `EVENTS_NATS_SUBJECT` (`bookverse.orders.created`). */
  readonly subject: string
  /**
   * `EVENTS_NATS_DUPLICATE_WINDOW_SECONDS` (600): how long the stream remembers message ids, set
   * when this layer creates the stream. Redeliveries after a worker crash come within the outbox
   * lease plus a restart, so it must be well above `OUTBOX_LEASE_SECONDS`.
   */
  readonly duplicateWindow: Duration.Duration
}

/** Whether NATS subject `subject` is captured by `pattern` (tokens split on `.`, `*` one token, `>` the rest). */
export const subjectMatches = (pattern: string, subject: string): boolean => {
  const p = pattern.split(".")
  const s = subject.split(".")
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i
    if (i >= s.length || (p[i] !== "*" && p[i] !== s[i])) return false
  }
  return p.length === s.length
}

const isStreamNotFound = (e: unknown) => e instanceof NatsError && e.api_error?.err_code === 10059

/** Connecting at start-up: NATS may still be starting, so a few tries over about 20 s. */
const connectSchedule = Schedule.exponential(Duration.millis(250), 2).pipe(
  Schedule.union(Schedule.spaced(Duration.seconds(5))),
  Schedule.intersect(Schedule.recurs(7))
)

/**
 * `EventPublisher` on NATS JetStream with the official `nats` client. Connects (retrying for
 * about 20 s), creates the stream capturing the subject when it does not exist, and fails with
 * `EventPublisherUnavailable` when it cannot connect or the existing stream does not capture the
 * subject. Each event is published with `Nats-Msg-Id` = event id, so JetStream drops a redelivery
 * within the stream's duplicate window (the receipt then says `duplicate`), and with the stream
 * name expected, so a message no stream stored is a failure. The connection is drained when the
 * layer closes.
 */
export const NatsEventPublisher = (options: NatsOptions): Layer.Layer<EventPublisher, EventPublisherUnavailable> =>
  Layer.scoped(
    EventPublisher,
    Effect.gen(function* () {
      const nc = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () =>
            connect({
              servers: options.servers.split(",").map((s) => s.trim()),
              name: "bookverse-checkout-outbox",
              maxReconnectAttempts: -1,
              reconnectTimeWait: 1_000
            }),
          catch: (e) => new EventPublisherUnavailable({ reason: `cannot connect to EVENTS_NATS_URL ${options.servers}: ${describe(e)}` })
        }).pipe(
          Effect.tapError((e) => Effect.logWarning("NATS not reachable yet").pipe(Effect.annotateLogs("reason", e.reason))),
          Effect.retry(connectSchedule)
        ),
        (connection: NatsConnection) => Effect.promise(() => connection.drain()).pipe(Effect.ignore)
      )

      // Connection changes are worth a log line; the client reconnects by itself. The status
      // iterator ends when the connection closes. (Not a Stream: interrupting one waits for the
      // iterator's `return()`, which this client's status iterator never settles.)
      const runFork = Runtime.runFork(yield* Effect.runtime<never>())
      const watchStatus = async () => {
        for await (const status of nc.status()) {
          const log =
            status.type === "disconnect" || status.type === "error"
              ? Effect.logWarning(`NATS ${status.type}`)
              : status.type === "reconnect"
              ? Effect.logInfo("NATS reconnected")
              : undefined
          if (log !== undefined) runFork(log.pipe(Effect.annotateLogs("server", String(status.data))))
        }
      }
      void watchStatus()

      const stream = yield* Effect.tryPromise({
        try: async () => {
          const jsm = await nc.jetstreamManager()
          try {
            return { created: false, info: await jsm.streams.info(options.stream) }
          } catch (e) {
            if (!isStreamNotFound(e)) throw e
          }
          const info = await jsm.streams.add({
            name: options.stream,
            subjects: [options.subject],
            duplicate_window: nanos(Duration.toMillis(options.duplicateWindow))
          })
          return { created: true, info }
        },
        catch: (e) => new EventPublisherUnavailable({ reason: `JetStream stream ${options.stream}: ${describe(e)}` })
      })
      const subjects = stream.info.config.subjects ?? []
      if (!subjects.some((pattern) => subjectMatches(pattern, options.subject))) {
        return yield* new EventPublisherUnavailable({
          reason: `stream ${options.stream} (subjects ${subjects.join(", ")}) does not capture EVENTS_NATS_SUBJECT ${options.subject}`
        })
      }
      yield* Effect.logInfo(stream.created ? "JetStream stream created" : "JetStream stream found").pipe(
        Effect.annotateLogs({
          stream: options.stream,
          subject: options.subject,
          duplicateWindowSeconds: stream.info.config.duplicate_window / 1e9
        })
      )

      const js = nc.jetstream()
      const encoder = new TextEncoder()
      return EventPublisher.of({
        target: { kind: "nats", servers: options.servers, stream: options.stream, subject: options.subject },
        publish: (event) =>
          Effect.tryPromise({
            try: () => {
              const h = headers()
              h.set("Content-Type", CLOUDEVENTS_JSON)
              return js.publish(options.subject, encoder.encode(JSON.stringify(event)), {
                msgID: event.id,
                headers: h,
                expect: { streamName: options.stream }
              })
            },
            catch: (e) => new EventPublishFailed({ eventId: event.id, reason: `NATS: ${describe(e)}` })
          }).pipe(
            Effect.map((ack): PublishReceipt => ({ duplicate: ack.duplicate })),
            Effect.withSpan("EventPublisher.publish", { attributes: { eventId: event.id, destination: "nats" } })
          )
      })
    })
  )

// ---------------------------------------------------------------------------------------------
// HTTP webhook
// ---------------------------------------------------------------------------------------------

/**
 * `EventPublisher` as an HTTP webhook: POSTs the CloudEvent to `url` in structured mode
 * (`Content-Type: application/cloudevents+json`) with `Idempotency-Key` = event id, on the
 * `HttpClient` in context. A 2xx answer is delivered; any other answer or a transport error is
 * `EventPublishFailed` (retried by the worker), since only 2xx says the receiver has the event.
 */
export const WebhookEventPublisher = (url: URL): Layer.Layer<EventPublisher, never, HttpClient.HttpClient> =>
  Layer.effect(
    EventPublisher,
    Effect.gen(function* () {
      const http = yield* HttpClient.HttpClient
      return EventPublisher.of({
        target: { kind: "webhook", url: url.toString() },
        publish: (event) =>
          Effect.gen(function* () {
            const request = HttpClientRequest.post(url).pipe(
              HttpClientRequest.setHeader("idempotency-key", event.id),
              HttpClientRequest.bodyText(JSON.stringify(event), CLOUDEVENTS_JSON)
            )
            const response = yield* http.execute(request).pipe(
              Effect.mapError((e) => new EventPublishFailed({ eventId: event.id, reason: `webhook: ${e.message}` }))
            )
            if (response.status >= 200 && response.status < 300) return { duplicate: false } satisfies PublishReceipt
            const body = yield* response.text.pipe(Effect.orElseSucceed(() => ""))
            return yield* new EventPublishFailed({
              eventId: event.id,
              reason: `webhook answered ${response.status}${body === "" ? "" : `: ${body.slice(0, 200)}`}`
            })
          }).pipe(Effect.withSpan("EventPublisher.publish", { attributes: { eventId: event.id, destination: "webhook" } }))
      })
    })
  )

// ---------------------------------------------------------------------------------------------
// None, and the choice by configuration
// ---------------------------------------------------------------------------------------------

/** No destination configured: publishing is a defect, and the worker leaves events in the outbox. */
export const NoEventPublisher: Layer.Layer<EventPublisher> = Layer.succeed(
  EventPublisher,
  EventPublisher.of({
    target: { kind: "none" },
    publish: () => Effect.die(new Error("no event publisher configured (EVENTS_NATS_URL or EVENTS_WEBHOOK_URL)"))
  })
)

/** Which destination the environment asks for. */
export type PublisherChoice =
  | { readonly kind: "nats"; readonly options: NatsOptions }
  | { readonly kind: "webhook"; readonly url: URL }
  | { readonly kind: "none" }

const NATS_SERVER = /^((nats|tls|ws|wss):\/\/)?[^\s/:,]+(:\d{1,5})?$/
const STREAM_NAME = /^[A-Za-z0-9_-]+$/
const SUBJECT = /^[^\s*>.]+(\.[^\s*>.]+)*$/

const isWebUrl = (s: string) => {
  try {
    const url = new URL(s)
    return url.protocol === "http:" || url.protocol === "https:"
  } catch {
    return false
  }
}

/** An optional variable where an empty value counts as unset; `validation` sees only non-empty values. */
const optionalString = (name: string, check: { readonly message: string; readonly validation: (s: string) => boolean }) =>
  Config.option(
    Config.string(name).pipe(
      Config.validate({ message: check.message, validation: (s) => s.trim() === "" || check.validation(s.trim()) })
    )
  ).pipe(Config.map(Option.flatMap((s) => (s.trim() === "" ? Option.none() : Option.some(s.trim())))))

/**
 * The destination from the environment: `EVENTS_NATS_URL` (with `EVENTS_NATS_STREAM`,
 * `EVENTS_NATS_SUBJECT`, `EVENTS_NATS_DUPLICATE_WINDOW_SECONDS`) selects NATS JetStream,
 * `EVENTS_WEBHOOK_URL` (http or https) selects the webhook, neither selects none. Both set, or a
 * malformed value, is a `ConfigError` naming the variable. (Each check runs before its default is
 * attached: after it, the error would not name the variable.)
 */
export const PublisherConfig: Config.Config<PublisherChoice> = Config.all({
  nats: optionalString("EVENTS_NATS_URL", {
    message: "must be nats://host:port (or a comma-separated list of them)",
    validation: (s) => s.split(",").every((server) => NATS_SERVER.test(server.trim()))
  }),
  stream: Config.string("EVENTS_NATS_STREAM").pipe(
    Config.validate({ message: "must be letters, digits, _ or - only", validation: (s) => STREAM_NAME.test(s) }),
    Config.withDefault("BOOKVERSE_ORDERS")
  ),
  subject: Config.string("EVENTS_NATS_SUBJECT").pipe(
    Config.validate({ message: "must be a NATS subject without wildcards (a.b.c)", validation: (s) => SUBJECT.test(s) }),
    Config.withDefault("bookverse.orders.created")
  ),
  duplicateWindowSeconds: Config.number("EVENTS_NATS_DUPLICATE_WINDOW_SECONDS").pipe(
    Config.validate({ message: "must be a number of seconds >= 1", validation: (n) => n >= 1 }),
    Config.withDefault(600)
  ),
  webhook: optionalString("EVENTS_WEBHOOK_URL", { message: "must be an http:// or https:// URL", validation: isWebUrl })
}).pipe(
  Config.mapOrFail(({ duplicateWindowSeconds, nats, stream, subject, webhook }): Either.Either<PublisherChoice, ConfigError.ConfigError> => {
    if (Option.isSome(nats) && Option.isSome(webhook)) {
      return Either.left(
        ConfigError.InvalidData(["EVENTS_WEBHOOK_URL"], "set either EVENTS_NATS_URL or EVENTS_WEBHOOK_URL, not both")
      )
    }
    if (Option.isSome(nats)) {
      return Either.right({
        kind: "nats",
        options: { servers: nats.value, stream, subject, duplicateWindow: Duration.seconds(duplicateWindowSeconds) }
      })
    }
    if (Option.isSome(webhook)) return Either.right({ kind: "webhook", url: new URL(webhook.value) })
    return Either.right({ kind: "none" })
  })
)

/** The `EventPublisher` the environment selects (`PublisherConfig`); the webhook on an undici client. */
export const EventPublisherLive: Layer.Layer<EventPublisher, ConfigError.ConfigError | EventPublisherUnavailable> =
  Layer.unwrapEffect(
    Effect.map(PublisherConfig, (choice) => {
      switch (choice.kind) {
        case "nats":
          return NatsEventPublisher(choice.options)
        case "webhook":
          return WebhookEventPublisher(choice.url).pipe(Layer.provide(NodeHttpClient.layerUndici))
        case "none":
          return NoEventPublisher
      }
    })
  )
