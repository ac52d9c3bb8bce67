import { describe, expect, it } from "@effect/vitest"
import { Clock, Deferred, Duration, Effect, Either, Exit, Fiber, Option, Redacted, TestClock } from "effect"
import { BookId } from "../../src/domain/Ids.js"
import {
  type FakeInventoryOptions,
  type FaultInjector,
  type FaultRule,
  startFakeInventory,
  type StartedFakeInventory
} from "../../src/fake-inventory/index.js"
import { withCorrelationId } from "../../src/services/Correlation.js"
import {
  AdjustOutcomeUnknown,
  InsufficientOnHand,
  InventoryBookNotFound,
  InventoryBusy,
  type InventoryClientOptions,
  InventoryRejected,
  InventoryTimeout,
  InventoryUnavailable,
  makeInventoryClient
} from "../../src/services/InventoryClient.js"
import {
  type InventoryRequest,
  type InventoryResponse,
  InventoryTransport,
  InventoryTransportError,
  UndiciInventoryTransport
} from "../../src/services/InventoryTransport.js"

// Demo catalog books of the fake (fixed ids, see src/fake-inventory/Catalog.ts).
const PRIDE = BookId.make("289f3439-3a2e-49a9-b447-eb6a95922a20") // 12 copies, price "16.99"
const FRANKENSTEIN = BookId.make("6b96d9f3-7091-4e87-8c64-347f666c9556") // 25 available of 30
const WUTHERING = BookId.make("545c1bc8-ca55-4b3a-a908-ebc4cef32629") // 1 copy
const UNKNOWN = BookId.make("0f6f3a52-5d7e-4c55-9a0e-3c1d2b4a5e6f")

const options = (overrides: Partial<InventoryClientOptions> = {}): InventoryClientOptions => ({
  baseUrl: "http://inventory.test",
  authToken: Option.none(),
  requestTimeout: Duration.seconds(2),
  retryAttempts: 2,
  retryBaseDelay: Duration.millis(10),
  maxConcurrency: 8,
  deadline: Duration.seconds(10),
  ...overrides
})

/** The failure of an effect that must fail (a success or a defect fails the test). */
const failureOf = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.flatMap(Effect.exit(effect), (exit) =>
    Exit.isFailure(exit) && exit.cause._tag === "Fail"
      ? Effect.succeed(exit.cause.error)
      : Effect.dieMessage(`expected a failure, got ${JSON.stringify(exit)}`))

// ---------------------------------------------------------------------------------------------
// Against the fake inventory server, in process, over real HTTP (undici)
// ---------------------------------------------------------------------------------------------

/** A fresh fake (faults enabled) for one test, closed when the test's scope closes. */
const fakeInventory = (fakeOptions: FakeInventoryOptions = {}) =>
  Effect.acquireRelease(
    Effect.promise(() => startFakeInventory({ faults: true, ...fakeOptions })),
    (fake) => Effect.promise(() => fake.close())
  )

const faultsOf = (fake: StartedFakeInventory): FaultInjector => {
  if (fake.faults === undefined) throw new Error("the fake was started without faults")
  return fake.faults
}

const addFault = (fake: StartedFakeInventory, rule: FaultRule) => Effect.sync(() => faultsOf(fake).add(rule))

/** Polls `condition` every 10 ms (real time) until it holds; the test's timeout bounds the wait. */
const waitUntil = (condition: () => boolean): Effect.Effect<void> =>
  Effect.suspend(() => (condition() ? Effect.void : Effect.zipRight(Effect.sleep(Duration.millis(10)), waitUntil(condition))))

const clientFor = (fake: StartedFakeInventory, overrides: Partial<InventoryClientOptions> = {}) =>
  makeInventoryClient(options({ baseUrl: fake.url, ...overrides }))

const requests = (fake: StartedFakeInventory) => fake.stats.snapshot().requests

const notesOf = (fake: StartedFakeInventory, bookId: string) =>
  fake.store.transactionsFor(bookId).map((t) => [t.quantity_change, t.notes])

describe("InventoryClient against the fake inventory", () => {
  it.scopedLive("the transport's timeout starts when a request runs: one send effect run again later still answers", () =>
    Effect.gen(function* () {
      const fake = yield* fakeInventory()
      const transport = yield* InventoryTransport
      // 2 s: ample for a first request on a cold connection on a loaded machine
      const ping = transport.send({ method: "GET", url: `${fake.url}/health`, headers: {}, timeoutMs: 2_000 })
      expect((yield* ping).status).toBe(200)
      yield* Effect.sleep(Duration.millis(2_500)) // longer than the timeout
      expect((yield* ping).status).toBe(200)
    }).pipe(Effect.provide(UndiciInventoryTransport)))

  it.scopedLive("interrupting a send aborts its request: the inventory sees the connection end at once", () =>
    Effect.gen(function* () {
      const fake = yield* fakeInventory()
      yield* addFault(fake, { route: "getStock", fault: { kind: "hang", ms: 60_000 } })
      const transport = yield* InventoryTransport
      const send = yield* Effect.fork(
        transport.send({ method: "GET", url: `${fake.url}/api/v1/inventory/${PRIDE}`, headers: {}, timeoutMs: 30_000 })
      )
      yield* waitUntil(() => fake.stats.snapshot().inFlight === 1)
      yield* Fiber.interrupt(send)
      yield* waitUntil(() => fake.stats.snapshot().inFlight === 0)
      expect(fake.stats.snapshot().requests.getStock).toBe(1)
    }).pipe(Effect.provide(UndiciInventoryTransport)))

  it.scopedLive("interrupting a POST stops the wait but does not abort the stock change: the inventory applies it", () =>
    Effect.gen(function* () {
      const fake = yield* fakeInventory()
      yield* addFault(fake, { route: "adjust", fault: { kind: "latency", ms: 600 } })
      const transport = yield* InventoryTransport
      const send = yield* Effect.fork(
        transport.send({
          method: "POST",
          url: `${fake.url}/api/v1/inventory/adjust?book_id=${PRIDE}`,
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ quantity_change: -1, notes: "not-cut-short" }),
          timeoutMs: 5_000
        })
      )
      yield* waitUntil(() => fake.stats.snapshot().inFlight === 1)
      yield* Fiber.interrupt(send)
      // an aborted request would end at the inventory at once (as the GET above does)
      yield* Effect.sleep(Duration.millis(200))
      expect(fake.stats.snapshot().inFlight).toBe(1)
      yield* waitUntil(() => fake.stats.snapshot().inFlight === 0)
      expect(fake.store.stock(PRIDE)?.inventory.quantity_available).toBe(11)
    }).pipe(Effect.provide(UndiciInventoryTransport)))

  it.scopedLive("getStock reads quantity_available from the real response shape (price a string, extra fields)", () =>
    Effect.gen(function* () {
      const fake = yield* fakeInventory()
      const inventory = yield* clientFor(fake)
      expect(yield* inventory.getStock(PRIDE)).toEqual({ bookId: PRIDE, available: 12 })
      // 25 available of 30 in total: only quantity_available counts
      expect(yield* inventory.getStock(FRANKENSTEIN)).toEqual({ bookId: FRANKENSTEIN, available: 25 })
      expect(fake.store.stock(PRIDE)?.book.price).toBe("16.99")
      expect(requests(fake).getStock).toBe(2)
    }).pipe(Effect.provide(UndiciInventoryTransport)))

  it.scopedLive("getStock of a book without an inventory record is InventoryBookNotFound, not retried", () =>
    Effect.gen(function* () {
      const fake = yield* fakeInventory()
      const inventory = yield* clientFor(fake)
      const error = yield* failureOf(inventory.getStock(UNKNOWN))
      expect(error).toEqual(new InventoryBookNotFound({ bookId: UNKNOWN }))
      expect(requests(fake).getStock).toBe(1)
    }).pipe(Effect.provide(UndiciInventoryTransport)))

  it.scopedLive("reads are retried on 500 and 503, then succeed", () =>
    Effect.gen(function* () {
      const fake = yield* fakeInventory()
      yield* addFault(fake, {
        route: "getStock",
        sequence: [{ kind: "status", status: 500 }, { kind: "status", status: 503 }]
      })
      const inventory = yield* clientFor(fake, { retryAttempts: 2 })
      expect(yield* inventory.getStock(PRIDE)).toEqual({ bookId: PRIDE, available: 12 })
      expect(requests(fake).getStock).toBe(3)
      expect(fake.stats.snapshot().faultsInjected.status).toBe(2)
    }).pipe(Effect.provide(UndiciInventoryTransport)))

  it.scopedLive("reads give up after RETRY_ATTEMPTS retries with InventoryUnavailable", () =>
    Effect.gen(function* () {
      const fake = yield* fakeInventory()
      yield* addFault(fake, { route: "getStock", fault: { kind: "status", status: 503 } })
      const inventory = yield* clientFor(fake, { retryAttempts: 2 })
      const error = yield* failureOf(inventory.getStock(PRIDE))
      expect(error).toEqual(new InventoryUnavailable({ reason: "status 503: Service unavailable" }))
      expect(requests(fake).getStock).toBe(3)
    }).pipe(Effect.provide(UndiciInventoryTransport)))

  it.scopedLive("reads are retried after a reset connection", () =>
    Effect.gen(function* () {
      const fake = yield* fakeInventory()
      yield* addFault(fake, { route: "getStock", sequence: [{ kind: "reset" }] })
      const inventory = yield* clientFor(fake)
      expect(yield* inventory.getStock(PRIDE)).toEqual({ bookId: PRIDE, available: 12 })
      expect(requests(fake).getStock).toBe(2)
    }).pipe(Effect.provide(UndiciInventoryTransport)))

  it.scopedLive("reads are not retried on 4xx", () =>
    Effect.gen(function* () {
      const fake = yield* fakeInventory()
      const inventory = yield* clientFor(fake, { retryAttempts: 3 })
      for (const status of [400, 401, 422, 429]) {
        faultsOf(fake).clear()
        fake.stats.reset()
        yield* addFault(fake, { route: "getStock", fault: { kind: "status", status } })
        const error = yield* failureOf(inventory.getStock(PRIDE))
        expect(error._tag).toBe("InventoryRejected")
        expect(error).toMatchObject({ status })
        expect(requests(fake).getStock).toBe(1)
      }
    }).pipe(Effect.provide(UndiciInventoryTransport)))

  it.scopedLive("adjust applies the change once and returns the recorded transaction", () =>
    Effect.gen(function* () {
      const fake = yield* fakeInventory()
      const inventory = yield* clientFor(fake)
      const transaction = yield* inventory.adjust(PRIDE, -2, "order:o-1:0")
      const logged = fake.store.transactionsFor(PRIDE)
      expect(logged).toHaveLength(1)
      expect(transaction).toEqual({
        id: logged[0]?.id,
        bookId: PRIDE,
        quantityChange: -2,
        notes: "order:o-1:0",
        timestamp: new Date(`${logged[0]?.timestamp}Z`)
      })
      expect(fake.store.available(PRIDE)).toBe(10)
      expect(requests(fake)).toMatchObject({ adjust: 1, transactions: 0 })
    }).pipe(Effect.provide(UndiciInventoryTransport)))

  it.scopedLive("adjust refused with 400 (would go negative) is InsufficientOnHand and not retried", () =>
    Effect.gen(function* () {
      const fake = yield* fakeInventory()
      const inventory = yield* clientFor(fake, { retryAttempts: 3 })
      const error = yield* failureOf(inventory.adjust(WUTHERING, -2, "order:o-2:0"))
      expect(error).toEqual(
        new InsufficientOnHand({ bookId: WUTHERING, detail: "Invalid adjustment - would result in negative inventory" })
      )
      expect(requests(fake)).toMatchObject({ adjust: 1, transactions: 0 })
      expect(fake.store.available(WUTHERING)).toBe(1)
      expect(fake.store.transactionsFor(WUTHERING)).toEqual([])
    }).pipe(Effect.provide(UndiciInventoryTransport)))

  for (const then of ["500", "drop"] as const) {
    it.scopedLive(`adjust applied but answered with ${then === "500" ? "a 500" : "a dropped connection"}: resolved from the log, applied once`, () =>
      Effect.gen(function* () {
        const fake = yield* fakeInventory()
        yield* addFault(fake, { route: "adjust", sequence: [{ kind: "applyThenFail", then }] })
        const inventory = yield* clientFor(fake, { retryAttempts: 3 })
        const transaction = yield* inventory.adjust(PRIDE, -3, "order:o-3:0")
        const logged = fake.store.transactionsFor(PRIDE)
        expect(logged).toHaveLength(1)
        expect(transaction.id).toBe(logged[0]?.id)
        expect(transaction).toMatchObject({ bookId: PRIDE, quantityChange: -3, notes: "order:o-3:0" })
        expect(fake.store.available(PRIDE)).toBe(9)
        expect(requests(fake)).toMatchObject({ adjust: 1, transactions: 1 })
        expect(fake.stats.snapshot().faultsInjected.applyThenFail).toBe(1)
      }).pipe(Effect.provide(UndiciInventoryTransport)))
  }

  it.scopedLive("adjust reset before it was applied: looked up, not found, re-sent once, applied once", () =>
    Effect.gen(function* () {
      const fake = yield* fakeInventory()
      yield* addFault(fake, { route: "adjust", sequence: [{ kind: "reset" }] })
      const inventory = yield* clientFor(fake, { retryAttempts: 3 })
      const transaction = yield* inventory.adjust(PRIDE, -4, "order:o-4:0")
      expect(notesOf(fake, PRIDE)).toEqual([[-4, "order:o-4:0"]])
      expect(transaction.id).toBe(fake.store.transactionsFor(PRIDE)[0]?.id)
      expect(fake.store.available(PRIDE)).toBe(8)
      expect(requests(fake)).toMatchObject({ adjust: 2, transactions: 1 })
    }).pipe(Effect.provide(UndiciInventoryTransport)))

  it.scopedLive("adjust dropped before its body was read: looked up, not found, re-sent once", () =>
    Effect.gen(function* () {
      const fake = yield* fakeInventory()
      yield* addFault(fake, { route: "adjust", sequence: [{ kind: "refuse" }] })
      const inventory = yield* clientFor(fake)
      yield* inventory.adjust(PRIDE, -1, "order:o-5:0")
      expect(notesOf(fake, PRIDE)).toEqual([[-1, "order:o-5:0"]])
      expect(fake.store.available(PRIDE)).toBe(11)
      expect(requests(fake)).toMatchObject({ adjust: 2, transactions: 1 })
    }).pipe(Effect.provide(UndiciInventoryTransport)))

  it.scopedLive("adjust timing out (hang longer than the request timeout), not in the log: AdjustOutcomeUnknown, not re-sent", () =>
    Effect.gen(function* () {
      const fake = yield* fakeInventory()
      yield* addFault(fake, { route: "adjust", sequence: [{ kind: "hang", ms: 3_000 }] })
      const inventory = yield* clientFor(fake, { requestTimeout: Duration.millis(300), retryAttempts: 3 })
      const started = Date.now()
      const error = yield* failureOf(inventory.adjust(PRIDE, -2, "order:o-6:0"))
      const elapsed = Date.now() - started
      expect(elapsed).toBeGreaterThanOrEqual(300)
      expect(elapsed).toBeLessThan(3_000)
      // the request may still be applied late: a re-send could take the stock twice
      expect(error).toEqual(
        new AdjustOutcomeUnknown({ bookId: PRIDE, note: "order:o-6:0", reason: "timed out and not in the transaction log yet" })
      )
      expect(notesOf(fake, PRIDE)).toEqual([])
      expect(fake.store.available(PRIDE)).toBe(12)
      expect(requests(fake)).toMatchObject({ adjust: 1, transactions: 1 })
      expect(fake.stats.snapshot().faultsInjected.hang).toBe(1)
    }).pipe(Effect.provide(UndiciInventoryTransport)))

  it.scopedLive("adjust whose re-send is also lost is AdjustOutcomeUnknown, nothing applied", () =>
    Effect.gen(function* () {
      const fake = yield* fakeInventory()
      yield* addFault(fake, { route: "adjust", sequence: [{ kind: "reset" }, { kind: "reset" }] })
      const inventory = yield* clientFor(fake, { retryAttempts: 3 })
      const error = yield* failureOf(inventory.adjust(PRIDE, -2, "order:o-7:0"))
      expect(error).toEqual(
        new AdjustOutcomeUnknown({ bookId: PRIDE, note: "order:o-7:0", reason: "still unknown after one re-send" })
      )
      expect(fake.store.available(PRIDE)).toBe(12)
      expect(requests(fake)).toMatchObject({ adjust: 2, transactions: 2 })
    }).pipe(Effect.provide(UndiciInventoryTransport)))

  it.scopedLive("adjust with an unknown outcome and an unreadable log is AdjustOutcomeUnknown, never re-sent", () =>
    Effect.gen(function* () {
      const fake = yield* fakeInventory()
      yield* addFault(fake, { route: "adjust", sequence: [{ kind: "reset" }] })
      yield* addFault(fake, { route: "transactions", fault: { kind: "status", status: 500 } })
      const inventory = yield* clientFor(fake, { retryAttempts: 2 })
      const error = yield* failureOf(inventory.adjust(PRIDE, -2, "order:o-8:0"))
      expect(error).toEqual(
        new AdjustOutcomeUnknown({
          bookId: PRIDE,
          note: "order:o-8:0",
          reason: "Broken; transaction log unreadable: InventoryUnavailable"
        })
      )
      expect(requests(fake)).toMatchObject({ adjust: 1, transactions: 3 })
      expect(fake.store.available(PRIDE)).toBe(12)
    }).pipe(Effect.provide(UndiciInventoryTransport)))

  it.scopedLive("findAdjustment pages through the log to find an older note", () =>
    Effect.gen(function* () {
      const fake = yield* fakeInventory()
      const inventory = yield* clientFor(fake)
      const since = new Date(Date.now() - 1_000)
      const target = fake.store.adjust(PRIDE, -1, "order:o-9:0")
      for (let i = 0; i < 150; i++) fake.store.adjust(PRIDE, 1, `restock:${i}`)
      const found = yield* inventory.findAdjustment(PRIDE, "order:o-9:0", since)
      expect(target._tag).toBe("Applied")
      expect(Option.map(found, (t) => t.id)).toEqual(
        Option.some(target._tag === "Applied" ? target.transaction.id : "not applied")
      )
      expect(requests(fake).transactions).toBe(2) // 100 per page, newest first: found on page 2
      expect(yield* inventory.findAdjustment(PRIDE, "order:nope:0", since)).toEqual(Option.none())
    }).pipe(Effect.provide(UndiciInventoryTransport)))

  it.scopedLive("bulkhead: at most maxConcurrency requests in flight across 10 concurrent reads", () =>
    Effect.gen(function* () {
      const fake = yield* fakeInventory()
      yield* addFault(fake, { route: "getStock", fault: { kind: "latency", ms: 100 } })
      const inventory = yield* clientFor(fake, { maxConcurrency: 2 })
      const levels = yield* Effect.all(
        Array.from({ length: 10 }, () => inventory.getStock(PRIDE)),
        { concurrency: "unbounded" }
      )
      expect(levels.map((l) => l.available)).toEqual(Array.from({ length: 10 }, () => 12))
      const stats = fake.stats.snapshot()
      expect(stats.requests.getStock).toBe(10)
      expect(stats.maxInFlight).toBe(2)
      expect(stats.faultsInjected.latency).toBe(10)
    }).pipe(Effect.provide(UndiciInventoryTransport)))

  it.scopedLive("sends the bearer token on adjusts when configured; without it the inventory's 401 is not retried", () =>
    Effect.gen(function* () {
      const fake = yield* fakeInventory({ requireToken: "s3cret" })
      const withToken = yield* clientFor(fake, { authToken: Option.some(Redacted.make("s3cret")) })
      const transaction = yield* withToken.adjust(PRIDE, -1, "order:o-10:0")
      expect(transaction.notes).toBe("order:o-10:0")
      expect(fake.store.available(PRIDE)).toBe(11)

      for (const authToken of [Option.none(), Option.some(Redacted.make("wrong"))]) {
        fake.stats.reset()
        const inventory = yield* clientFor(fake, { authToken, retryAttempts: 3 })
        const error = yield* failureOf(inventory.adjust(PRIDE, -1, "order:o-11:0"))
        expect(error).toEqual(new InventoryRejected({ status: 401, detail: "Authentication required" }))
        expect(requests(fake)).toMatchObject({ adjust: 1, transactions: 0 })
        // reads need no token
        expect(yield* inventory.getStock(PRIDE)).toEqual({ bookId: PRIDE, available: 11 })
      }
      expect(notesOf(fake, PRIDE)).toEqual([[-1, "order:o-10:0"]])
    }).pipe(Effect.provide(UndiciInventoryTransport)))

  it.scopedLive("a refused connection: reads and adjusts fail with InventoryUnavailable, the adjust as not applied", () =>
    Effect.gen(function* () {
      // a port that was just listening and is now closed refuses connections
      const closed = yield* Effect.promise(async () => {
        const fake = await startFakeInventory()
        await fake.close()
        return fake.url
      })
      const inventory = yield* makeInventoryClient(options({ baseUrl: closed, retryAttempts: 1 }))
      expect(yield* failureOf(inventory.getStock(PRIDE))).toEqual(new InventoryUnavailable({ reason: "ECONNREFUSED" }))
      expect(yield* failureOf(inventory.adjust(PRIDE, -1, "order:o-12:0"))).toEqual(
        new InventoryUnavailable({ reason: "not applied: ECONNREFUSED" })
      )
    }).pipe(Effect.provide(UndiciInventoryTransport)))
})

// ---------------------------------------------------------------------------------------------
// Against a scripted HttpClient, with the TestClock
// ---------------------------------------------------------------------------------------------

interface Call {
  readonly method: string
  readonly path: string
  readonly params: Readonly<Record<string, string>>
  readonly at: number
  readonly headers: Readonly<Record<string, string>>
}

type Responder = (
  request: InventoryRequest,
  call: Call,
  n: number
) => Effect.Effect<InventoryResponse, InventoryTransportError>

/** A transport that answers with `respond` and records every call and when (by `Clock`) it came. */
const scripted = (respond: Responder) => {
  const calls: Array<Call> = []
  const transport = InventoryTransport.of({
    send: (request) =>
      Effect.gen(function* () {
        const url = new URL(request.url)
        const call: Call = {
          method: request.method,
          path: url.pathname,
          params: Object.fromEntries(url.searchParams),
          at: yield* Clock.currentTimeMillis,
          headers: { ...request.headers }
        }
        calls.push(call)
        // the transport's timeout, by Effect's Clock (the TestClock here)
        return yield* respond(request, call, calls.length).pipe(
          Effect.timeoutFail({
            duration: Duration.millis(request.timeoutMs),
            onTimeout: () => new InventoryTransportError({ code: undefined, message: "timed out", timedOut: true })
          })
        )
      })
  })
  return { transport, calls }
}

const json = (_request: InventoryRequest, status: number, body: unknown) => Effect.succeed({ status, body })

const refused = (_request: InventoryRequest) =>
  Effect.fail(
    new InventoryTransportError({ code: "ECONNREFUSED", message: "connect ECONNREFUSED 127.0.0.1:8001", timedOut: false })
  )

const loggedTransaction = (notes: string, id = "7b0a4c1e-6a63-4d0e-9d7a-2f1f1f0c0a01") => ({
  id,
  book_id: PRIDE,
  transaction_type: "stock_out",
  quantity_change: -2,
  notes,
  timestamp: "2025-01-01T12:00:00.123000"
})

const page = (transactions: ReadonlyArray<unknown>) => ({
  transactions,
  pagination: { total: transactions.length, page: 1, per_page: 100, pages: 1, has_next: false, has_prev: false }
})

const scriptedClient = (respond: Responder, overrides: Partial<InventoryClientOptions> = {}) =>
  Effect.gen(function* () {
    const { calls, transport } = scripted(respond)
    const inventory = yield* makeInventoryClient(options(overrides)).pipe(
      Effect.provideService(InventoryTransport, transport)
    )
    return { inventory, calls }
  })

const route = (call: Call) => `${call.method} ${call.path}`

describe("InventoryClient policy (scripted HttpClient, TestClock)", () => {
  it.effect("getStock ignores extra fields at every level and accepts a numeric price", () =>
    Effect.gen(function* () {
      const { inventory, calls } = yield* scriptedClient((request) =>
        json(request, 200, {
          inventory: { id: "x", book_id: PRIDE, quantity_available: 3, quantity_total: 9, warehouse: { aisle: 4 } },
          book: { id: PRIDE, title: "Pride and Prejudice", price: 16.99, isbn: "978-0141439518" },
          served_by: "replica-2"
        })
      )
      expect(yield* inventory.getStock(PRIDE)).toEqual({ bookId: PRIDE, available: 3 })
      expect(calls.map(route)).toEqual([`GET /api/v1/inventory/${PRIDE}`])
      expect(calls[0]?.headers["accept"]).toBe("application/json")
    }))

  it.effect("an unexpected read body is InventoryUnavailable", () =>
    Effect.gen(function* () {
      const { inventory } = yield* scriptedClient((request) => json(request, 200, { inventory: { book_id: PRIDE } }))
      expect(yield* failureOf(inventory.getStock(PRIDE))).toEqual(
        new InventoryUnavailable({ reason: "unexpected response body" })
      )
    }))

  it.effect("retries a read on 503 with exponential, jittered backoff: ~100 ms, then ~200 ms", () =>
    Effect.gen(function* () {
      const { inventory, calls } = yield* scriptedClient(
        (request) => json(request, 503, { detail: "Service unavailable" }),
        { retryAttempts: 2, retryBaseDelay: Duration.millis(100) }
      )
      const fiber = yield* Effect.fork(Effect.either(inventory.getStock(PRIDE)))
      yield* TestClock.adjust(Duration.seconds(1))
      const result = yield* Fiber.join(fiber)
      expect(result).toEqual(Either.left(new InventoryUnavailable({ reason: "status 503: Service unavailable" })))
      expect(calls).toHaveLength(3)
      const [first, second, third] = calls.map((c) => c.at)
      expect(first).toBe(0)
      const gap1 = (second ?? Number.NaN) - (first ?? Number.NaN)
      const gap2 = (third ?? Number.NaN) - (second ?? Number.NaN)
      expect(gap1).toBeGreaterThanOrEqual(80)
      expect(gap1).toBeLessThanOrEqual(120)
      expect(gap2).toBeGreaterThanOrEqual(160)
      expect(gap2).toBeLessThanOrEqual(240)
      expect(gap2).toBeGreaterThan(gap1)
    }))

  it.effect("no retry happens before its backoff has elapsed", () =>
    Effect.gen(function* () {
      const { inventory, calls } = yield* scriptedClient(
        (request, _call, n) =>
          n < 3 ? json(request, 503, { detail: "Service unavailable" }) : json(request, 200, {
            inventory: { book_id: PRIDE, quantity_available: 7 }
          }),
        { retryAttempts: 2, retryBaseDelay: Duration.millis(100) }
      )
      const fiber = yield* Effect.fork(inventory.getStock(PRIDE))
      yield* TestClock.adjust(Duration.millis(79))
      expect(calls).toHaveLength(1)
      yield* TestClock.adjust(Duration.millis(41)) // t = 120: the first backoff (80..120 ms) is over
      expect(calls).toHaveLength(2)
      yield* TestClock.adjust(Duration.millis(500))
      expect(yield* Fiber.join(fiber)).toEqual({ bookId: PRIDE, available: 7 })
      expect(calls).toHaveLength(3)
    }))

  it.effect("retryAttempts 0 means one call", () =>
    Effect.gen(function* () {
      const { inventory, calls } = yield* scriptedClient(
        (request) => json(request, 500, { detail: "Internal server error" }),
        { retryAttempts: 0 }
      )
      const error = yield* failureOf(inventory.getStock(PRIDE))
      expect(error).toEqual(new InventoryUnavailable({ reason: "status 500: Internal server error" }))
      expect(calls).toHaveLength(1)
    }))

  it.effect("a read that times out is retried, then fails with InventoryTimeout", () =>
    Effect.gen(function* () {
      const { inventory, calls } = yield* scriptedClient(() => Effect.never, {
        requestTimeout: Duration.millis(500),
        retryAttempts: 1,
        retryBaseDelay: Duration.millis(100)
      })
      const fiber = yield* Effect.fork(Effect.either(inventory.getStock(PRIDE)))
      yield* TestClock.adjust(Duration.seconds(5))
      const result = yield* Fiber.join(fiber)
      expect(result).toEqual(Either.left(new InventoryTimeout({ reason: "no answer within 500ms" })))
      expect(calls).toHaveLength(2)
      expect((calls[1]?.at ?? 0) - (calls[0]?.at ?? 0)).toBeGreaterThanOrEqual(500 + 80)
    }))

  it.effect("bulkhead: a call that gets no slot within its deadline fails with InventoryBusy and sends nothing", () =>
    Effect.gen(function* () {
      // the first request is stuck on a connection that cannot be aborted: it holds the only slot
      const stuck = yield* Deferred.make<void>()
      const { inventory, calls } = yield* scriptedClient(
        (request, _call, n) =>
          n === 1
            ? Effect.zipRight(Effect.uninterruptible(Deferred.await(stuck)), json(request, 503, { detail: "Service unavailable" }))
            : json(request, 200, { inventory: { book_id: PRIDE, quantity_available: 1 } }),
        { maxConcurrency: 1, deadline: Duration.seconds(1), requestTimeout: Duration.seconds(5), retryAttempts: 0 }
      )
      const holder = yield* Effect.fork(Effect.either(inventory.getStock(PRIDE)))
      yield* TestClock.adjust(Duration.millis(10))
      const reading = yield* Effect.fork(Effect.either(inventory.getStock(FRANKENSTEIN)))
      const adjusting = yield* Effect.fork(Effect.either(inventory.adjust(PRIDE, -1, "order:o-7:0")))
      yield* TestClock.adjust(Duration.millis(999))
      expect(reading.unsafePoll()).toBeNull()
      yield* TestClock.adjust(Duration.millis(1))
      const busy = new InventoryBusy({ reason: "no free inventory slot within the 1s deadline (1 in flight)" })
      expect(yield* Fiber.join(reading)).toEqual(Either.left(busy))
      expect(yield* Fiber.join(adjusting)).toEqual(Either.left(busy))
      expect(calls.map(route)).toEqual([`GET /api/v1/inventory/${PRIDE}`])
      yield* Deferred.succeed(stuck, undefined)
      expect(yield* Fiber.join(holder)).toEqual(Either.left(new InventoryTimeout({ reason: "no answer within the 1s deadline" })))
    }))

  it.effect("an attempt is cut at the call's deadline when that comes before the per-attempt timeout, and not retried", () =>
    Effect.gen(function* () {
      const { inventory, calls } = yield* scriptedClient(() => Effect.never, {
        deadline: Duration.seconds(3),
        requestTimeout: Duration.seconds(2),
        retryAttempts: 5,
        retryBaseDelay: Duration.millis(100)
      })
      const reading = yield* Effect.fork(Effect.either(inventory.getStock(PRIDE)))
      yield* TestClock.adjust(Duration.seconds(2)) // the first attempt times out after 2 s
      yield* TestClock.adjust(Duration.millis(200)) // backoff; the second has 0.8 s left at most
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* Fiber.join(reading)).toEqual(
        Either.left(new InventoryTimeout({ reason: "no answer within the 3s deadline" }))
      )
      expect(calls.map(route)).toEqual([`GET /api/v1/inventory/${PRIDE}`, `GET /api/v1/inventory/${PRIDE}`])
      expect(calls[1]!.at).toBeGreaterThan(2_000)
    }))

  it.effect("an adjust whose connection was refused is re-sent (it never reached the inventory)", () =>
    Effect.gen(function* () {
      const { inventory, calls } = yield* scriptedClient(
        (request, _call, n) => (n === 1 ? refused(request) : json(request, 200, loggedTransaction("order:o-1:0"))),
        { retryAttempts: 2, retryBaseDelay: Duration.millis(100) }
      )
      const fiber = yield* Effect.fork(inventory.adjust(PRIDE, -2, "order:o-1:0"))
      yield* TestClock.adjust(Duration.seconds(1))
      const transaction = yield* Fiber.join(fiber)
      expect(calls.map(route)).toEqual(["POST /api/v1/inventory/adjust", "POST /api/v1/inventory/adjust"])
      expect(calls[0]?.params).toEqual({ book_id: PRIDE })
      expect(transaction).toEqual({
        id: "7b0a4c1e-6a63-4d0e-9d7a-2f1f1f0c0a01",
        bookId: PRIDE,
        quantityChange: -2,
        notes: "order:o-1:0",
        timestamp: new Date("2025-01-01T12:00:00.123Z")
      })
    }))

  it.effect("an adjust refused on every attempt fails as not applied, without a log lookup", () =>
    Effect.gen(function* () {
      const { inventory, calls } = yield* scriptedClient((request) => refused(request), {
        retryAttempts: 2,
        retryBaseDelay: Duration.millis(100)
      })
      const fiber = yield* Effect.fork(Effect.either(inventory.adjust(PRIDE, -2, "order:o-1:0")))
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* Fiber.join(fiber)).toEqual(
        Either.left(new InventoryUnavailable({ reason: "not applied: ECONNREFUSED" }))
      )
      expect(calls.map(route)).toEqual(Array.from({ length: 3 }, () => "POST /api/v1/inventory/adjust"))
    }))

  it.effect("an adjust answered 503 is not blindly re-sent: the log shows it applied", () =>
    Effect.gen(function* () {
      const { inventory, calls } = yield* scriptedClient((request, call) =>
        call.method === "POST"
          ? json(request, 503, { detail: "Service unavailable" })
          : json(request, 200, page([loggedTransaction("order:other:0", "11111111-1111-4111-8111-111111111111"), loggedTransaction("order:o-2:0")]))
      )
      const transaction = yield* inventory.adjust(PRIDE, -2, "order:o-2:0")
      expect(calls.map(route)).toEqual(["POST /api/v1/inventory/adjust", "GET /api/v1/transactions"])
      expect(calls[1]?.params).toEqual({ book_id: PRIDE, page: "1", per_page: "100" })
      expect(transaction).toMatchObject({ id: "7b0a4c1e-6a63-4d0e-9d7a-2f1f1f0c0a01", notes: "order:o-2:0" })
    }))

  it.effect("an adjust answered 503 and absent from the log is re-sent once", () =>
    Effect.gen(function* () {
      const { inventory, calls } = yield* scriptedClient((request, call, n) =>
        call.method === "GET"
          ? json(request, 200, page([]))
          : n === 1
          ? json(request, 503, { detail: "Service unavailable" })
          : json(request, 200, loggedTransaction("order:o-3:0"))
      )
      const transaction = yield* inventory.adjust(PRIDE, -2, "order:o-3:0")
      expect(calls.map(route)).toEqual([
        "POST /api/v1/inventory/adjust",
        "GET /api/v1/transactions",
        "POST /api/v1/inventory/adjust"
      ])
      expect(transaction.notes).toBe("order:o-3:0")
    }))

  it.effect("an adjust that timed out is not re-sent when the log does not show it: it may still be applied late", () =>
    Effect.gen(function* () {
      const { inventory, calls } = yield* scriptedClient(
        (request, call) => (call.method === "GET" ? json(request, 200, page([])) : Effect.never),
        { requestTimeout: Duration.millis(500) }
      )
      const fiber = yield* Effect.fork(Effect.either(inventory.adjust(PRIDE, -2, "order:o-8:0")))
      yield* TestClock.adjust(Duration.millis(500))
      expect(yield* Fiber.join(fiber)).toEqual(
        Either.left(new AdjustOutcomeUnknown({ bookId: PRIDE, note: "order:o-8:0", reason: "timed out and not in the transaction log yet" }))
      )
      expect(calls.map(route)).toEqual(["POST /api/v1/inventory/adjust", "GET /api/v1/transactions"])
    }))

  it.effect("an adjust that timed out but shows in the log counts as applied", () =>
    Effect.gen(function* () {
      const { inventory, calls } = yield* scriptedClient(
        (request, call) => (call.method === "GET" ? json(request, 200, page([loggedTransaction("order:o-9:0")])) : Effect.never),
        { requestTimeout: Duration.millis(500) }
      )
      const fiber = yield* Effect.fork(inventory.adjust(PRIDE, -2, "order:o-9:0"))
      yield* TestClock.adjust(Duration.millis(500))
      expect((yield* Fiber.join(fiber)).notes).toBe("order:o-9:0")
      expect(calls.map(route)).toEqual(["POST /api/v1/inventory/adjust", "GET /api/v1/transactions"])
    }))

  it.effect("refuses a zero or fractional change without calling the inventory", () =>
    Effect.gen(function* () {
      const { inventory, calls } = yield* scriptedClient((request) => json(request, 200, loggedTransaction("x")))
      for (const change of [0, 1.5]) {
        const exit = yield* Effect.exit(inventory.adjust(PRIDE, change, "order:o-4:0"))
        expect(Exit.isFailure(exit) && exit.cause._tag === "Die").toBe(true)
      }
      expect(calls).toEqual([])
    }))

  it.effect("forwards the correlation id as X-Request-Id on every call, and sends none outside a request", () =>
    Effect.gen(function* () {
      // the adjust gets a 500, so its log lookup is made too
      const { inventory, calls } = yield* scriptedClient((request, call) =>
        call.method === "POST"
          ? json(request, 500, { detail: "Internal server error" })
          : call.path.endsWith("/transactions")
          ? json(request, 200, page([loggedTransaction("order:o-5:0")]))
          : json(request, 200, { inventory: { book_id: PRIDE, quantity_available: 1 } })
      )
      yield* inventory.getStock(PRIDE).pipe(withCorrelationId("req-123"))
      yield* inventory.adjust(PRIDE, -2, "order:o-5:0").pipe(withCorrelationId("req-456"))
      yield* inventory.getStock(PRIDE)
      expect(calls.map((c) => [route(c), c.headers["x-request-id"]])).toEqual([
        [`GET /api/v1/inventory/${PRIDE}`, "req-123"],
        ["POST /api/v1/inventory/adjust", "req-456"],
        ["GET /api/v1/transactions", "req-456"],
        [`GET /api/v1/inventory/${PRIDE}`, undefined]
      ])
    }))

  it.effect("sends the bearer token on adjusts only, and none when not configured", () =>
    Effect.gen(function* () {
      const respond: Responder = (request, call) =>
        call.method === "GET"
          ? json(request, 200, { inventory: { book_id: PRIDE, quantity_available: 1 } })
          : json(request, 200, loggedTransaction("order:o-6:0"))
      const configured = yield* scriptedClient(respond, { authToken: Option.some(Redacted.make("tok-1")) })
      yield* configured.inventory.adjust(PRIDE, -2, "order:o-6:0")
      yield* configured.inventory.getStock(PRIDE)
      expect(configured.calls.map((c) => c.headers["authorization"])).toEqual(["Bearer tok-1", undefined])

      const anonymous = yield* scriptedClient(respond)
      yield* anonymous.inventory.adjust(PRIDE, -2, "order:o-6:0")
      expect(anonymous.calls.map((c) => c.headers["authorization"])).toEqual([undefined])
    }))
})
