import {
  Config,
  Context,
  Duration,
  Effect,
  Either,
  FiberRef,
  Layer,
  Option,
  Redacted,
  Schedule,
  Schema,
  Tracer
} from "effect"
import type { BookId } from "../domain/Ids.js"
import { makeBulkhead } from "./Bulkhead.js"
import { retryAfter } from "./Retry.js"
import { CorrelationId } from "./Correlation.js"
import { recordInventoryRequestNow } from "./Metrics.js"
import { tracedWhereBuilt } from "./Tracing.js"
import {
  type InventoryRequest,
  type InventoryResponse,
  InventoryTransport,
  type InventoryTransportError
} from "./InventoryTransport.js"

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
   * by a timeout, reset or 5xx is looked up in the transaction log by its note. After a reset or
   * 5xx that it shows not applied, it is re-sent once; after a timeout it is not (the request may
   * still be applied late): `AdjustOutcomeUnknown`, for recovery to settle from the log.
   * Succeeds with the inventory's transaction.
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
  /** The call's deadline passed before this attempt could be sent (after a backoff, or a wait for a slot): nothing sent. */
  | { readonly _tag: "Expired"; readonly reason: string }
  | { readonly _tag: "Broken"; readonly reason: string }
  /** No answer in time; `atDeadline` when the call's deadline cut it, so no retry has time left. */
  | { readonly _tag: "TimedOut"; readonly reason: string; readonly atDeadline: boolean }
  | { readonly _tag: "ServerError"; readonly status: number; readonly reason: string }
  | { readonly _tag: "ClientError"; readonly status: number; readonly detail: string }

/** A connection that certainly never carried the request: the only case an adjust may be re-sent. */
const REFUSED_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "UND_ERR_CONNECT_TIMEOUT"])

const detailOf = (body: unknown): string => {
  if (typeof body !== "object" || body === null || !("detail" in body)) return "no detail"
  const detail = body.detail
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
    case "Expired":
      return "expired"
    case "Broken":
      return "reset"
  }
}

const isRetryableRead = (f: AttemptFailure): boolean =>
  f._tag !== "ClientError" && f._tag !== "Busy" && f._tag !== "Expired" && !(f._tag === "TimedOut" && f.atDeadline)
const isRefused = (f: AttemptFailure): boolean => f._tag === "Refused"
const isOutcomeUnknown = (f: AttemptFailure): boolean =>
  f._tag === "Broken" || f._tag === "TimedOut" || f._tag === "ServerError"

/** How far the inventory's clock may be behind ours when paging its log. */
const CLOCK_SKEW_MS = 60_000
/** The most log pages read to settle one adjust. */
const MAX_LOG_PAGES = 50
const LOG_PAGE_SIZE = 100

// decoders compiled once (a body that does not match is the inventory's failure, not ours)
const decodeStock = Schema.decodeUnknownEither(StockBody)
const decodeTransaction = Schema.decodeUnknownEither(TransactionBody)
const decodePage = Schema.decodeUnknownEither(TransactionsPage)

/** The W3C `traceparent` of the current span, when there is one that is recorded (tracing on). */
const traceparentOf = (context: Context.Context<never>): string | undefined => {
  const span = Context.getOption(context, Tracer.ParentSpan)
  if (Option.isNone(span) || span.value.traceId === "noop") return undefined
  return `00-${span.value.traceId}-${span.value.spanId}-${span.value.sampled ? "01" : "00"}`
}

/**
 * Builds the HTTP inventory client (INVENTORY_CONTRACT.md; policy from ARCHITECTURE.md,
 * "Inventory client policy") on the `InventoryTransport` in context. Each attempt is one
 * transport request bounded by one timeout (the per-attempt timeout, or what is left of the
 * call's deadline when that is shorter) and holds one bulkhead slot (`makeBulkhead`).
 */
export const makeInventoryClient = (
  options: InventoryClientOptions
): Effect.Effect<InventoryClientService, never, InventoryTransport> =>
  Effect.gen(function* () {
    const transport = yield* InventoryTransport
    const bulkhead = yield* makeBulkhead(options.maxConcurrency)
    const traced = yield* tracedWhereBuilt
    const retrySchedule = Schedule.exponential(options.retryBaseDelay, 2).pipe(
      Schedule.jittered,
      Schedule.intersect(Schedule.recurs(options.retryAttempts))
    )
    const requestTimeoutMs = Duration.toMillis(options.requestTimeout)
    const deadlineMs = Duration.toMillis(options.deadline)
    const deadlineText = Duration.format(options.deadline)
    const noSlot = (): AttemptFailure => ({
      _tag: "Busy",
      reason: `no free inventory slot within the ${deadlineText} deadline (${options.maxConcurrency} in flight)`
    })
    const expired: AttemptFailure = { _tag: "Expired", reason: `no answer within the ${deadlineText} deadline` }
    const authorization: Record<string, string> = Option.match(options.authToken, {
      onNone: () => ({}),
      onSome: (token) => ({ authorization: `Bearer ${Redacted.value(token)}` })
    })

    /** JSON, the correlation id as `X-Request-Id` and the trace as `traceparent`, plus `extra`. */
    const headersFor = (
      fiber: { readonly getFiberRef: <A>(ref: FiberRef.FiberRef<A>) => A },
      extra: Readonly<Record<string, string>>
    ) => {
      const headers: Record<string, string> = { accept: "application/json", ...extra }
      const correlationId = fiber.getFiberRef(CorrelationId)
      if (correlationId !== "") headers["x-request-id"] = correlationId
      const traceparent = traceparentOf(fiber.getFiberRef(FiberRef.currentContext))
      if (traceparent !== undefined) headers["traceparent"] = traceparent
      return headers
    }

    /**
     * One request within `deadlineAt` (epoch ms): waits for a bulkhead slot (`Busy`, nothing sent,
     * when none comes free in time), sends, and classifies the outcome. Succeeds with a 2xx
     * answer's body.
     */
    const attempt = (
      operation: InventoryOperation,
      request: Omit<InventoryRequest, "headers" | "timeoutMs">,
      extraHeaders: Readonly<Record<string, string>>,
      deadlineAt: number
    ): Effect.Effect<unknown, AttemptFailure> =>
      Effect.clockWith((clock) => {
        const left = deadlineAt - clock.unsafeCurrentTimeMillis()
        if (left <= 0) return Effect.fail(expired)
        // the attempt's timeout is what is left once the slot is held, at most the per-attempt timeout
        const send = Effect.suspend(() => {
          const leftNow = deadlineAt - clock.unsafeCurrentTimeMillis()
          if (leftNow <= 0) return Effect.fail(expired)
          const timeoutMs = Math.min(requestTimeoutMs, leftNow)
          const atDeadline = timeoutMs < requestTimeoutMs
          const timedOut: AttemptFailure = {
            _tag: "TimedOut",
            reason: atDeadline
              ? `no answer within the ${deadlineText} deadline`
              : `no answer within ${Duration.format(options.requestTimeout)}`,
            atDeadline
          }
          return sendOnce(operation, request, extraHeaders, timeoutMs, timedOut)
        })
        return bulkhead.withSlot(Duration.millis(left), noSlot)(send)
      })

    /** What a transport failure means for an attempt. */
    const transportFailure = (e: InventoryTransportError, timedOut: AttemptFailure): AttemptFailure =>
      e.timedOut
        ? timedOut
        : e.code !== undefined && REFUSED_CODES.has(e.code)
        ? { _tag: "Refused", reason: e.code }
        : { _tag: "Broken", reason: e.code ?? e.message }

    /** What an answer's status means for an attempt: `undefined` for a 2xx. */
    const statusFailure = ({ body, status }: InventoryResponse): AttemptFailure | undefined =>
      status >= 500
        ? { _tag: "ServerError", status, reason: `status ${status}: ${detailOf(body)}` }
        : status >= 400
        ? { _tag: "ClientError", status, detail: detailOf(body) }
        : undefined

    /**
     * One request through the transport, its outcome classified, and counted and timed in
     * `checkout_inventory_requests_total` and its histogram.
     */
    const sendOnce = (
      operation: InventoryOperation,
      request: Omit<InventoryRequest, "headers" | "timeoutMs">,
      extraHeaders: Readonly<Record<string, string>>,
      timeoutMs: number,
      timedOut: AttemptFailure
    ): Effect.Effect<unknown, AttemptFailure> =>
      Effect.withFiberRuntime<unknown, AttemptFailure>((fiber) => {
        const started = performance.now()
        const seconds = () => (performance.now() - started) / 1000
        // (the metrics are recorded in the continuation itself, which runs on the fiber: no step of their own)
        return Effect.matchEffect(transport.send({ ...request, headers: headersFor(fiber, extraHeaders), timeoutMs }), {
          onFailure: (e) => {
            const failure = transportFailure(e, timedOut)
            recordInventoryRequestNow(operation, attemptStatus(failure), seconds())
            return Effect.fail(failure)
          },
          onSuccess: (response) => {
            const failure = statusFailure(response)
            recordInventoryRequestNow(operation, String(response.status), seconds())
            return failure === undefined ? Effect.succeed(response.body) : Effect.fail(failure)
          }
        })
      }).pipe(traced(`InventoryClient.http.${operation}`, { kind: "client" }))

    const readFailure = (f: AttemptFailure): ReadError => {
      switch (f._tag) {
        case "Busy":
          return new InventoryBusy({ reason: f.reason })
        case "TimedOut":
        case "Expired":
          return new InventoryTimeout({ reason: f.reason })
        case "ClientError":
          return new InventoryRejected({ status: f.status, detail: f.detail })
        default:
          return new InventoryUnavailable({ reason: f.reason })
      }
    }

    /**
     * One call: attempts within one call deadline, retried while `retryable` says so, and a 2xx
     * body decoded by `decode` (a body that does not decode is `Broken`).
     */
    const call = <A>(
      operation: InventoryOperation,
      request: Omit<InventoryRequest, "headers" | "timeoutMs">,
      extraHeaders: Readonly<Record<string, string>>,
      retryable: (f: AttemptFailure) => boolean,
      decode: (body: unknown) => Either.Either<A, unknown>
    ): Effect.Effect<A, AttemptFailure> => {
      const decoded = (body: unknown): Effect.Effect<A, AttemptFailure> =>
        Either.match(decode(body), {
          onLeft: (): Effect.Effect<A, AttemptFailure> => Effect.fail({ _tag: "Broken", reason: "unexpected response body" }),
          onRight: Effect.succeed
        })
      return Effect.clockWith((clock) => {
        const attemptOnce = attempt(operation, request, extraHeaders, clock.unsafeCurrentTimeMillis() + deadlineMs)
        // the first attempt's answer is decoded in the same continuation as its failure is handled;
        // the retries (by `retrySchedule`, while `retryable` says so) are set up only after a failure
        return Effect.matchEffect(attemptOnce, {
          onSuccess: decoded,
          onFailure: (first) =>
            Effect.flatMap(retryAfter(first, attemptOnce, { schedule: retrySchedule, while: retryable }), decoded)
        })
      })
    }

    /** A GET: retried on 5xx, refused and timeout, within one call deadline. */
    const read = <A>(operation: InventoryOperation, url: string, decode: (body: unknown) => Either.Either<A, unknown>) =>
      call(operation, { method: "GET", url }, {}, isRetryableRead, decode)

    const getStock = (bookId: BookId): Effect.Effect<StockLevel, InventoryBookNotFound | ReadError> =>
      read("get_stock", `${options.baseUrl}/api/v1/inventory/${encodeURIComponent(bookId)}`, decodeStock).pipe(
        Effect.mapBoth({
          onFailure: (f) =>
            f._tag === "ClientError" && f.status === 404 ? new InventoryBookNotFound({ bookId }) : readFailure(f),
          onSuccess: (result): StockLevel => ({ bookId, available: result.inventory.quantity_available })
        }),
        traced("InventoryClient.getStock")
      )

    const findAdjustment = (bookId: BookId, note: string, since: Date) =>
      Effect.gen(function* () {
        const horizon = since.getTime() - CLOCK_SKEW_MS
        for (let page = 1; page <= MAX_LOG_PAGES; page++) {
          const query = new URLSearchParams({ book_id: bookId, page: String(page), per_page: String(LOG_PAGE_SIZE) })
          const result = yield* read("transactions", `${options.baseUrl}/api/v1/transactions?${query}`, decodePage).pipe(
            Effect.mapError(readFailure)
          )
          const entries = result.transactions.map(toTransaction)
          const match = entries.find((t) => t.notes === note)
          if (match !== undefined) return Option.some(match)
          const oldest = entries[entries.length - 1]
          if (!result.pagination.has_next || oldest === undefined || oldest.timestamp.getTime() < horizon) break
        }
        return Option.none<InventoryTransaction>()
      }).pipe(traced("InventoryClient.findAdjustment"))

    /** One adjust send, re-sent only while the connection is refused. */
    const sendAdjust = (bookId: BookId, change: number, note: string): Effect.Effect<InventoryTransaction, AttemptFailure> => {
      const request: Omit<InventoryRequest, "headers" | "timeoutMs"> = {
        method: "POST",
        url: `${options.baseUrl}/api/v1/inventory/adjust?book_id=${encodeURIComponent(bookId)}`,
        body: JSON.stringify({ quantity_change: change, notes: note })
      }
      const headers = { "content-type": "application/json", ...authorization }
      return call("adjust", request, headers, isRefused, (body) => Either.map(decodeTransaction(body), toTransaction))
    }

    /** Why an adjust certainly was not applied (or was refused), or `undefined` when its outcome is unknown. */
    const settled = (bookId: BookId, f: AttemptFailure): AdjustError | undefined => {
      switch (f._tag) {
        case "ClientError":
          if (f.status === 400) return new InsufficientOnHand({ bookId, detail: f.detail })
          if (f.status === 404) return new InventoryBookNotFound({ bookId })
          return new InventoryRejected({ status: f.status, detail: f.detail })
        case "Busy":
          return new InventoryBusy({ reason: f.reason })
        case "Expired":
          // never sent: certainly not applied
          return new InventoryBusy({ reason: `not applied: ${f.reason}` })
        case "Refused":
          // never reached the service: certainly not applied
          return new InventoryUnavailable({ reason: `not applied: ${f.reason}` })
        default:
          return undefined
      }
    }

    /** The slow path of an adjust whose first send's outcome is unknown: the log, then one re-send. */
    const settleUnknown = (bookId: BookId, change: number, note: string, startedAt: Date, first: AttemptFailure) =>
      Effect.gen(function* () {
        let failure = first
        for (let send = 1; send <= 2; send++) {
          if (send === 2) {
            const outcome = yield* Effect.either(sendAdjust(bookId, change, note))
            if (Either.isRight(outcome)) return outcome.right
            failure = outcome.left
            const final = settled(bookId, failure)
            // the first send's outcome was settled as not applied, so a refused re-send leaves nothing held
            if (final !== undefined) return yield* Effect.fail(final)
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
          if (failure._tag === "TimedOut") {
            // A request that timed out may still be on its way to being applied: re-sending now could
            // take the stock twice. Recovery settles it from the log once the inventory has caught up.
            return yield* Effect.fail(
              new AdjustOutcomeUnknown({ bookId, note, reason: "timed out and not in the transaction log yet" })
            )
          }
          if (send === 1) {
            yield* Effect.logWarning("inventory adjust not applied after an unknown outcome; re-sending once").pipe(
              Effect.annotateLogs({ bookId, note, failure: failure._tag })
            )
          }
        }
        if (failure._tag === "ServerError") {
          // it answered, twice, and its log shows neither send: certainly not applied
          return yield* Effect.fail(new InventoryUnavailable({ reason: `not applied: ${failure.reason}` }))
        }
        // a timed-out or broken request may still be applied later: recovery settles it from the log
        return yield* Effect.fail(new AdjustOutcomeUnknown({ bookId, note, reason: "still unknown after one re-send" }))
      })

    const adjust = (bookId: BookId, change: number, note: string): Effect.Effect<InventoryTransaction, AdjustError> => {
      if (!Number.isInteger(change) || change === 0) {
        return Effect.die(new Error(`adjust needs a non-zero integer change, got ${change}`))
      }
      return Effect.clockWith((clock) => {
        const startedMs = clock.unsafeCurrentTimeMillis()
        return Effect.catchAll(sendAdjust(bookId, change, note), (failure) => {
          const final = settled(bookId, failure)
          return final !== undefined ? Effect.fail(final) : settleUnknown(bookId, change, note, new Date(startedMs), failure)
        })
      }).pipe(traced("InventoryClient.adjust"))
    }

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

/** The live ping, on the `InventoryTransport` in context and `INVENTORY_BASE_URL`. */
export const InventoryHealthLive = Layer.effect(
  InventoryHealth,
  Effect.gen(function* () {
    const transport = yield* InventoryTransport
    const { baseUrl } = yield* InventoryClientConfig
    return {
      ping: transport.send({ method: "GET", url: `${baseUrl}/health`, headers: {}, timeoutMs: 1_000 }).pipe(
        Effect.as(true),
        Effect.orElseSucceed(() => false)
      )
    }
  })
)
