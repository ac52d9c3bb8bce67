import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import {
  Clock,
  Config,
  Context,
  Duration,
  Effect,
  Either,
  Layer,
  Option,
  Redacted,
  Schedule,
  Schema
} from "effect"
import type { BookId } from "../domain/Ids.js"
import { currentCorrelationId } from "./Correlation.js"
import { recordInventoryRequest } from "./Metrics.js"

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/** The inventory has no record for this book (its 404 "Inventory record not found"). */
export class InventoryBookNotFound extends Schema.TaggedError<InventoryBookNotFound>()("InventoryBookNotFound", {
  bookId: Schema.String
}) {}

/**
 * The inventory refused an adjust because stock on hand would go below zero (its 400
 * "Invalid adjustment - would result in negative inventory"): how a lost race shows up.
 */
export class InsufficientOnHand extends Schema.TaggedError<InsufficientOnHand>()("InsufficientOnHand", {
  bookId: Schema.String,
  detail: Schema.String
}) {}

/** The inventory answered another 4xx (bad token, rejected request): retrying never helps. */
export class InventoryRejected extends Schema.TaggedError<InventoryRejected>()("InventoryRejected", {
  status: Schema.Int,
  detail: Schema.String
}) {}

/** The inventory failed (5xx, refused or reset connection, unreadable body, no free slot) after the retries the policy allows. */
export class InventoryUnavailable extends Schema.TaggedError<InventoryUnavailable>()("InventoryUnavailable", {
  reason: Schema.String
}) {}

/**
 * No bulkhead slot came free within the call's deadline: `INVENTORY_MAX_CONCURRENCY` requests were
 * already in flight. Nothing was sent.
 */
export class InventoryBusy extends Schema.TaggedError<InventoryBusy>()("InventoryBusy", {
  reason: Schema.String
}) {}

/** The inventory did not answer within the per-attempt timeout or the call's deadline. */
export class InventoryTimeout extends Schema.TaggedError<InventoryTimeout>()("InventoryTimeout", {
  reason: Schema.String
}) {}

/**
 * An adjust may or may not have been applied: it timed out, its connection broke, or it got a 5xx,
 * and neither the transaction log nor one re-send settled it. Recovery must resolve it by its note.
 */
export class AdjustOutcomeUnknown extends Schema.TaggedError<AdjustOutcomeUnknown>()("AdjustOutcomeUnknown", {
  bookId: Schema.String,
  note: Schema.String,
  reason: Schema.String
}) {}

/** Failures of a read (`getStock`, `findAdjustment`). */
export type ReadError = InventoryUnavailable | InventoryTimeout | InventoryRejected | InventoryBusy
/** Failures of an adjust. */
export type AdjustError =
  | InsufficientOnHand
  | InventoryBookNotFound
  | InventoryRejected
  | InventoryUnavailable
  | InventoryBusy
  | AdjustOutcomeUnknown

// ---------------------------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------------------------

/** A book's stock as checkout needs it: copies available (`quantity_available`). */
export interface StockLevel {
  readonly bookId: BookId
  readonly available: number
}

/** One entry of the inventory's transaction log (INVENTORY_CONTRACT.md, adjust and transactions). */
export interface InventoryTransaction {
  readonly id: string
  readonly bookId: string
  readonly quantityChange: number
  readonly notes: string | null
  /** When the inventory recorded it, read as UTC. */
  readonly timestamp: Date
}

/**
 * The inventory service as checkout uses it. Every call forwards the request's correlation id as
 * `X-Request-Id`.
 */
export interface InventoryClientService {
  /**
   * Copies available of `bookId`. Retried on 5xx, refused connections and timeouts.
   * Fails with `InventoryBookNotFound` on 404, otherwise a `ReadError`.
   */
  readonly getStock: (bookId: BookId) => Effect.Effect<StockLevel, InventoryBookNotFound | ReadError>
  /**
   * Applies `change` (a non-zero number of copies: negative takes, positive gives back) tagged
   * with the unique `note`. Re-sent only when the connection was refused; an outcome left unknown
   * by a timeout, reset or 5xx is looked up in the transaction log by its note, and when it was
   * not applied it is re-sent once. Succeeds with the inventory's transaction.
   */
  readonly adjust: (
    bookId: BookId,
    change: number,
    note: string
  ) => Effect.Effect<InventoryTransaction, AdjustError>
  /**
   * The adjust tagged `note` for `bookId`, if the inventory recorded one at or after `since`
   * (the log is paged newest first until entries are older than `since` minus a clock-skew margin).
   */
  readonly findAdjustment: (
    bookId: BookId,
    note: string,
    since: Date
  ) => Effect.Effect<Option.Option<InventoryTransaction>, ReadError>
}

/** The inventory service (INVENTORY_CONTRACT.md). The saga depends on this tag only. */
export class InventoryClient extends Context.Tag("bookverse/InventoryClient")<
  InventoryClient,
  InventoryClientService
>() {}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/** How the HTTP client reaches the inventory, and its retry, timeout and bulkhead policy. */
export interface InventoryClientOptions {
  /** e.g. `http://localhost:8001` */
  readonly baseUrl: string
  /** Bearer token sent on adjusts, when set. */
  readonly authToken: Option.Option<Redacted.Redacted<string>>
  /** Per-attempt timeout. */
  readonly requestTimeout: Duration.Duration
  /** Retries after the first attempt (reads: 5xx, refused, timeout; adjusts: refused only). */
  readonly retryAttempts: number
  /** First backoff delay; doubles each retry, with jitter. */
  readonly retryBaseDelay: Duration.Duration
  /** Most requests in flight to the inventory at once (the bulkhead). */
  readonly maxConcurrency: number
  /** Overall deadline of one call, waiting for a slot included. */
  readonly deadline: Duration.Duration
}

/**
 * Reads the inventory client's options from the environment: `INVENTORY_BASE_URL`
 * (http://localhost:8001), `INVENTORY_AUTH_TOKEN` (secret, unset), `REQUEST_TIMEOUT_SECONDS` (2),
 * `RETRY_ATTEMPTS` (2), `INVENTORY_MAX_CONCURRENCY` (8), `INVENTORY_DEADLINE_SECONDS` (10).
 * A bad value fails with a `ConfigError` naming the variable.
 */
export const InventoryClientConfig: Config.Config<InventoryClientOptions> = Config.all({
  baseUrl: Config.url("INVENTORY_BASE_URL").pipe(
    Config.withDefault(new URL("http://localhost:8001")),
    Config.map((url) => url.toString().replace(/\/+$/, ""))
  ),
  authToken: Config.option(Config.redacted("INVENTORY_AUTH_TOKEN")),
  requestTimeout: Config.number("REQUEST_TIMEOUT_SECONDS").pipe(
    Config.validate({ message: "must be a positive number of seconds", validation: (n) => n > 0 }),
    Config.withDefault(2),
    Config.map((s) => Duration.millis(Math.round(s * 1000)))
  ),
  retryAttempts: Config.integer("RETRY_ATTEMPTS").pipe(
    Config.validate({ message: "must be an integer from 0 to 10", validation: (n) => n >= 0 && n <= 10 }),
    Config.withDefault(2)
  ),
  retryBaseDelay: Config.succeed(Duration.millis(100)),
  maxConcurrency: Config.integer("INVENTORY_MAX_CONCURRENCY").pipe(
    Config.validate({ message: "must be an integer from 1 to 1000", validation: (n) => n >= 1 && n <= 1000 }),
    Config.withDefault(8)
  ),
  deadline: Config.number("INVENTORY_DEADLINE_SECONDS").pipe(
    Config.validate({ message: "must be a positive number of seconds", validation: (n) => n > 0 }),
    Config.withDefault(10),
    Config.map((s) => Duration.millis(Math.round(s * 1000)))
  )
})

// ---------------------------------------------------------------------------------------------
// Wire schemas (extra fields are ignored, as the contract requires)
// ---------------------------------------------------------------------------------------------

/** Naive timestamps (no zone designator) are UTC per the contract. */
const parseTimestamp = (s: string): Date => new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : `${s}Z`)

const StockBody = Schema.Struct({
  inventory: Schema.Struct({ book_id: Schema.String, quantity_available: Schema.Int })
})

const TransactionBody = Schema.Struct({
  id: Schema.String,
  book_id: Schema.String,
  quantity_change: Schema.Int,
  notes: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
  timestamp: Schema.String
})

const TransactionsPage = Schema.Struct({
  transactions: Schema.Array(TransactionBody),
  pagination: Schema.Struct({ has_next: Schema.Boolean })
})

const DetailBody = Schema.Struct({ detail: Schema.Unknown })

const toTransaction = (t: typeof TransactionBody.Type): InventoryTransaction => ({
  id: t.id,
  bookId: t.book_id,
  quantityChange: t.quantity_change,
  notes: t.notes,
  timestamp: parseTimestamp(t.timestamp)
})

// ---------------------------------------------------------------------------------------------
// One attempt and its failure kinds
// ---------------------------------------------------------------------------------------------

/** What one attempt can end with, before the policy decides what it means. */
type AttemptFailure =
  | { readonly _tag: "Refused"; readonly reason: string }
  | { readonly _tag: "Busy"; readonly reason: string }
  | { readonly _tag: "Broken"; readonly reason: string }
  | { readonly _tag: "TimedOut"; readonly reason: string }
  | { readonly _tag: "ServerError"; readonly status: number; readonly reason: string }
  | { readonly _tag: "ClientError"; readonly status: number; readonly detail: string }

const causeCode = (error: unknown): string | undefined => {
  let current: unknown = error
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    if ("code" in current && typeof current.code === "string") return current.code
    current = "cause" in current ? current.cause : undefined
  }
  return undefined
}

/** A connection that certainly never carried the request: the only case an adjust may be re-sent. */
const REFUSED_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "UND_ERR_CONNECT_TIMEOUT"])

const detailOf = (body: unknown): string => {
  const decoded = Schema.decodeUnknownOption(DetailBody)(body)
  if (Option.isNone(decoded)) return "no detail"
  const detail = decoded.value.detail
  return typeof detail === "string" ? detail : JSON.stringify(detail)
}

/** The inventory calls, as the `operation` label of the inventory metrics. */
type InventoryOperation = "get_stock" | "adjust" | "transactions"

/** The `status` label of a failed attempt: the HTTP status, or what went wrong on the way. */
const attemptStatus = (f: AttemptFailure): string => {
  switch (f._tag) {
    case "ServerError":
    case "ClientError":
      return String(f.status)
    case "TimedOut":
      return "timeout"
    case "Refused":
      return "refused"
    case "Busy":
      return "busy"
    case "Broken":
      return "reset"
  }
}

const isRetryableRead = (f: AttemptFailure): boolean => f._tag !== "ClientError" && f._tag !== "Busy"
const isRefused = (f: AttemptFailure): boolean => f._tag === "Refused"
const isOutcomeUnknown = (f: AttemptFailure): boolean =>
  f._tag === "Broken" || f._tag === "TimedOut" || f._tag === "ServerError"

/** How far the inventory's clock may be behind ours when paging its log. */
const CLOCK_SKEW_MS = 60_000
/** The most log pages read to settle one adjust. */
const MAX_LOG_PAGES = 50
const LOG_PAGE_SIZE = 100

/**
 * Builds the HTTP inventory client (INVENTORY_CONTRACT.md; policy from ARCHITECTURE.md,
 * "Inventory client policy") on the `HttpClient` in context.
 */
export const makeInventoryClient = (
  options: InventoryClientOptions
): Effect.Effect<InventoryClientService, never, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    const http = yield* HttpClient.HttpClient
    const bulkhead = yield* Effect.makeSemaphore(options.maxConcurrency)
    const retrySchedule = Schedule.exponential(options.retryBaseDelay, 2).pipe(
      Schedule.jittered,
      Schedule.intersect(Schedule.recurs(options.retryAttempts))
    )

    const deadlineMs = Duration.toMillis(options.deadline)
    const busy = (): AttemptFailure => ({
      _tag: "Busy",
      reason: `no free inventory slot within the ${Duration.format(options.deadline)} deadline (${options.maxConcurrency} in flight)`
    })

    /**
     * Waits for a bulkhead slot until `deadlineAt` (epoch ms), then runs `effect` holding it;
     * `Busy` (nothing sent) when none came free in time.
     */
    const withSlot =
      (deadlineAt: number) => <A>(effect: Effect.Effect<A, AttemptFailure>): Effect.Effect<A, AttemptFailure> =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          deadlineAt - now <= 0
            ? Effect.fail(busy())
            : Effect.uninterruptibleMask((restore) =>
                // only the wait is interruptible (by the timeout); once taken, the slot is always released
                restore(
                  bulkhead.take(1).pipe(Effect.timeoutFail({ duration: Duration.millis(deadlineAt - now), onTimeout: busy }))
                ).pipe(Effect.zipRight(restore(effect).pipe(Effect.ensuring(bulkhead.release(1)))))
              )
        )

    /**
     * Sends one request and reads its JSON body; classifies every failure; counts it in
     * `checkout_inventory_requests_total{operation,status}` and times it.
     */
    const attempt = (operation: InventoryOperation, request: HttpClientRequest.HttpClientRequest) =>
      Effect.gen(function* () {
        const correlationId = yield* currentCorrelationId
        const withId = correlationId === "" ? request : HttpClientRequest.setHeader(request, "x-request-id", correlationId)
        const response = yield* http.execute(withId)
        const body: unknown = yield* response.json.pipe(Effect.orElseSucceed(() => null))
        return { status: response.status, body }
      }).pipe(
        Effect.scoped,
        Effect.timeoutFail({
          duration: options.requestTimeout,
          onTimeout: (): AttemptFailure => ({
            _tag: "TimedOut",
            reason: `no answer within ${Duration.format(options.requestTimeout)}`
          })
        }),
        Effect.catchTag("RequestError", (e): Effect.Effect<never, AttemptFailure> => {
          const code = causeCode(e.cause)
          return Effect.fail(
            code !== undefined && REFUSED_CODES.has(code)
              ? { _tag: "Refused", reason: code }
              : { _tag: "Broken", reason: code ?? e.message }
          )
        }),
        Effect.catchTag("ResponseError", (e): Effect.Effect<never, AttemptFailure> =>
          Effect.fail({ _tag: "Broken", reason: e.message })
        ),
        Effect.flatMap(({ body, status }): Effect.Effect<{ status: number; body: unknown }, AttemptFailure> => {
          if (status >= 500) return Effect.fail({ _tag: "ServerError", status, reason: `status ${status}: ${detailOf(body)}` })
          if (status >= 400) return Effect.fail({ _tag: "ClientError", status, detail: detailOf(body) })
          return Effect.succeed({ status, body })
        }),
        (sent) =>
          Effect.suspend(() => {
            const started = performance.now()
            const seconds = () => (performance.now() - started) / 1000
            return sent.pipe(
              Effect.tapBoth({
                onFailure: (f) => recordInventoryRequest(operation, attemptStatus(f), seconds()),
                onSuccess: ({ status }) => recordInventoryRequest(operation, String(status), seconds())
              })
            )
          }),
        Effect.withSpan(`InventoryClient.http.${operation}`, { kind: "client" })
      )

    const readFailure = (f: AttemptFailure): ReadError => {
      switch (f._tag) {
        case "Busy":
          return new InventoryBusy({ reason: f.reason })
        case "TimedOut":
          return new InventoryTimeout({ reason: f.reason })
        case "ClientError":
          return new InventoryRejected({ status: f.status, detail: f.detail })
        default:
          return new InventoryUnavailable({ reason: f.reason })
      }
    }

    /** A read: retried on 5xx, refused and timeout; bounded by the call's deadline. */
    const read = <A, I>(
      operation: InventoryOperation,
      request: HttpClientRequest.HttpClientRequest,
      schema: Schema.Schema<A, I>
    ) =>
      Effect.flatMap(Clock.currentTimeMillis, (start) =>
        withSlot(start + deadlineMs)(attempt(operation, request)).pipe(
          Effect.retry({ schedule: retrySchedule, while: isRetryableRead })
        )
      ).pipe(
        Effect.flatMap(({ body }) =>
          Schema.decodeUnknown(schema)(body).pipe(
            Effect.mapError((): AttemptFailure => ({ _tag: "Broken", reason: "unexpected response body" }))
          )
        ),
        // a backstop: the slot wait and each attempt are already bounded by the deadline
        Effect.timeoutFail({
          duration: Duration.sum(options.deadline, Duration.millis(50)),
          onTimeout: (): AttemptFailure => ({
            _tag: "TimedOut",
            reason: `no answer within the ${Duration.format(options.deadline)} deadline`
          })
        })
      )

    const url = (path: string, params: Record<string, string>) =>
      HttpClientRequest.get(`${options.baseUrl}${path}`).pipe(
        HttpClientRequest.setUrlParams(params),
        HttpClientRequest.acceptJson
      )

    const getStock = Effect.fn("InventoryClient.getStock")(function* (bookId: BookId) {
      const request = HttpClientRequest.get(`${options.baseUrl}/api/v1/inventory/${encodeURIComponent(bookId)}`).pipe(
        HttpClientRequest.acceptJson
      )
      const result = yield* read("get_stock", request, StockBody).pipe(
        Effect.mapError((f) =>
          f._tag === "ClientError" && f.status === 404 ? new InventoryBookNotFound({ bookId }) : readFailure(f)
        )
      )
      return { bookId, available: result.inventory.quantity_available } satisfies StockLevel
    })

    const findAdjustment = Effect.fn("InventoryClient.findAdjustment")(function* (
      bookId: BookId,
      note: string,
      since: Date
    ) {
      const horizon = since.getTime() - CLOCK_SKEW_MS
      for (let page = 1; page <= MAX_LOG_PAGES; page++) {
        const result = yield* read(
          "transactions",
          url("/api/v1/transactions", { book_id: bookId, page: String(page), per_page: String(LOG_PAGE_SIZE) }),
          TransactionsPage
        ).pipe(Effect.mapError(readFailure))
        const entries = result.transactions.map(toTransaction)
        const match = entries.find((t) => t.notes === note)
        if (match !== undefined) return Option.some(match)
        const oldest = entries[entries.length - 1]
        if (!result.pagination.has_next || oldest === undefined || oldest.timestamp.getTime() < horizon) break
      }
      return Option.none<InventoryTransaction>()
    })

    /** One adjust send, re-sent only while the connection is refused. */
    const sendAdjust = (bookId: BookId, change: number, note: string) => {
      let request = HttpClientRequest.post(`${options.baseUrl}/api/v1/inventory/adjust`).pipe(
        HttpClientRequest.setUrlParam("book_id", bookId),
        HttpClientRequest.acceptJson,
        HttpClientRequest.bodyUnsafeJson({ quantity_change: change, notes: note })
      )
      if (Option.isSome(options.authToken)) {
        request = HttpClientRequest.bearerToken(request, Redacted.value(options.authToken.value))
      }
      return Effect.flatMap(Clock.currentTimeMillis, (start) =>
        withSlot(start + deadlineMs)(attempt("adjust", request)).pipe(
          Effect.retry({ schedule: retrySchedule, while: isRefused })
        )
      ).pipe(
        Effect.flatMap(({ body }) =>
          Schema.decodeUnknown(TransactionBody)(body).pipe(
            Effect.map(toTransaction),
            Effect.mapError((): AttemptFailure => ({ _tag: "Broken", reason: "unexpected adjust response body" }))
          )
        )
      )
    }

    const adjust = Effect.fn("InventoryClient.adjust")(function* (bookId: BookId, change: number, note: string) {
      if (!Number.isInteger(change) || change === 0) {
        return yield* Effect.die(new Error(`adjust needs a non-zero integer change, got ${change}`))
      }
      const rejected = (f: AttemptFailure): AdjustError | undefined => {
        if (f._tag === "ClientError") {
          if (f.status === 400) return new InsufficientOnHand({ bookId, detail: f.detail })
          if (f.status === 404) return new InventoryBookNotFound({ bookId })
          return new InventoryRejected({ status: f.status, detail: f.detail })
        }
        if (f._tag === "Busy") return new InventoryBusy({ reason: f.reason })
        if (f._tag === "Refused") {
          // never reached the service: certainly not applied
          return new InventoryUnavailable({ reason: `not applied: ${f.reason}` })
        }
        return undefined
      }
      const startedAt = new Date(yield* Clock.currentTimeMillis)
      let lastFailure: AttemptFailure | undefined
      for (let send = 1; send <= 2; send++) {
        const outcome = yield* Effect.either(sendAdjust(bookId, change, note))
        if (Either.isRight(outcome)) return outcome.right
        const failure = outcome.left
        lastFailure = failure
        const final = rejected(failure)
        if (final !== undefined) {
          // the first send's outcome was settled as not applied, so a refused re-send leaves nothing held
          return yield* Effect.fail(final)
        }
        // The outcome is unknown (timeout, reset, 5xx): the transaction log says whether it was applied.
        if (!isOutcomeUnknown(failure)) break
        const found = yield* Effect.either(findAdjustment(bookId, note, startedAt))
        if (Either.isLeft(found)) {
          return yield* Effect.fail(
            new AdjustOutcomeUnknown({ bookId, note, reason: `${failure._tag}; transaction log unreadable: ${found.left._tag}` })
          )
        }
        if (Option.isSome(found.right)) return found.right.value
        yield* Effect.logWarning("inventory adjust not applied after an unknown outcome; re-sending once").pipe(
          Effect.annotateLogs({ bookId, note, failure: failure._tag })
        )
      }
      if (lastFailure?._tag === "ServerError") {
        // it answered, twice, and its log shows neither send: certainly not applied
        return yield* Effect.fail(new InventoryUnavailable({ reason: `not applied: ${lastFailure.reason}` }))
      }
      // a timed-out or broken request may still be applied later: recovery settles it from the log
      return yield* Effect.fail(new AdjustOutcomeUnknown({ bookId, note, reason: "still unknown after one re-send" }))
    })

    return { getStock, adjust, findAdjustment } satisfies InventoryClientService
  })


/** Whether the inventory answers at all, for readiness checks. */
export class InventoryHealth extends Context.Tag("bookverse/InventoryHealth")<
  InventoryHealth,
  {
    /**
     * `GET /health` of the inventory within 1 s: true for any answer (a demo deployment reports
     * "degraded" while serving normally, INVENTORY_CONTRACT.md), false for no answer.
     */
    readonly ping: Effect.Effect<boolean>
  }
>() {}

/** The live ping, on the `HttpClient` in context and `INVENTORY_BASE_URL`. */
export const InventoryHealthLive = Layer.effect(
  InventoryHealth,
  Effect.gen(function* () {
    const http = yield* HttpClient.HttpClient
    const { baseUrl } = yield* InventoryClientConfig
    return {
      ping: http.get(`${baseUrl}/health`).pipe(
        Effect.scoped,
        Effect.as(true),
        Effect.timeoutFail({ duration: Duration.seconds(1), onTimeout: () => "timeout" }),
        Effect.orElseSucceed(() => false)
      )
    }
  })
)
