import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import {
  Clock,
  ConfigProvider,
  Context,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  HashMap,
  Layer,
  Logger,
  Scope,
  TestClock
} from "effect"
import { randomUUID } from "node:crypto"
import type { CloudEvent } from "../../src/domain/Events.js"
import { BookId, OrderId, UserId } from "../../src/domain/Ids.js"
import { Cents } from "../../src/domain/Money.js"
import { Order, OrderItem } from "../../src/domain/Order.js"
import { WorkerConfig } from "../../src/layers/Worker.js"
import { orderCreatedData } from "../../src/services/Checkout.js"
import {
  EventPublisher,
  EventPublishFailed,
  PublisherConfig,
  subjectMatches
} from "../../src/services/EventPublisher.js"
import { IdempotencyStoreLive } from "../../src/services/IdempotencyStore.js"
import { OrderRepo, OrderRepoLive } from "../../src/services/OrderRepo.js"
import { Outbox, OutboxLive } from "../../src/services/Outbox.js"
import {
  type BackoffPolicy,
  makeOutboxWorker,
  OutboxWorker,
  OutboxWorkerLive,
  type OutboxWorkerOptions,
  retryDelay
} from "../../src/services/OutboxWorker.js"
import { testDatabases } from "../support/databases.js"

const BOOK = BookId.make("11111111-1111-4111-8111-111111111111")


const OPTIONS: OutboxWorkerOptions = {
  workerId: "worker-a",
  batchSize: 50,
  lease: Duration.seconds(30),
  publishTimeout: Duration.seconds(5),
  pollInterval: Duration.millis(100),
  maxAttempts: 10,
  backoff: { base: Duration.seconds(1), max: Duration.seconds(4), jitter: false },
  statsInterval: Duration.minutes(10)
}

interface Attempt {
  readonly id: string
  readonly orderId: string
  readonly at: number
  readonly ok: boolean
}

/**
 * An `EventPublisher` that records every attempt (event id, order, clock time, outcome) and fails
 * the attempts `fails(event, n)` picks (n counts attempts per event from 1).
 */
const recordingPublisher = (fails: (event: CloudEvent, attempt: number) => boolean = () => false) => {
  const attempts: Array<Attempt> = []
  const delivered: Array<CloudEvent> = []
  const perEvent = new Map<string, number>()
  const publisher = EventPublisher.of({
    target: { kind: "webhook", url: "http://receiver.test/" },
    publish: (event) =>
      Effect.gen(function* () {
        const n = (perEvent.get(event.id) ?? 0) + 1
        perEvent.set(event.id, n)
        const ok = !fails(event, n)
        attempts.push({ id: event.id, orderId: event.data.orderId, at: yield* Clock.currentTimeMillis, ok })
        if (!ok) return yield* new EventPublishFailed({ eventId: event.id, reason: `receiver down (attempt ${n})` })
        delivered.push(event)
        return { duplicate: false }
      })
  })
  return { publisher, attempts, delivered }
}

const workerWith = (publisher: Context.Tag.Service<EventPublisher>, options: Partial<OutboxWorkerOptions> = {}) =>
  makeOutboxWorker({ ...OPTIONS, ...options }).pipe(Effect.provideService(EventPublisher, publisher))

/** An order of `qty` copies at 16.99, as the saga would have confirmed it at `at`. */
const orderAt = (at: Date, qty = 1) =>
  Order.make({
    orderId: OrderId.make(randomUUID()),
    status: "CONFIRMED",
    total: Cents.make(1699 * qty),
    currency: "USD",
    items: [OrderItem.make({ bookId: BOOK, qty, unitPrice: Cents.make(1699), lineTotal: Cents.make(1699 * qty) })],
    createdAt: at
  })

/** Stores a PENDING order and confirms it, which writes its `order.created` row; returns the order. */
const confirmedOrder = (qty = 1) =>
  Effect.gen(function* () {
    const repo = yield* OrderRepo
    const now = new Date(yield* Clock.currentTimeMillis)
    const order = orderAt(now, qty)
    yield* repo.insertPending({
      orderId: order.orderId,
      userId: UserId.make("reader-1"),
      idempotencyKey: null,
      items: order.items,
      total: order.total,
      createdAt: now,
      leaseUntil: now
    })
    const ok = yield* repo.confirm(
      order.orderId,
      { type: "order.created", aggregateId: order.orderId, payload: orderCreatedData(order, "reader-1") },
      now
    )
    expect(ok).toBe(true)
    return order
  })

/** Appends one more `order.created`-shaped row for `order` at the current clock time; returns its id. */
const appendFor = (order: Order) =>
  Effect.gen(function* () {
    const outbox = yield* Outbox
    const now = new Date(yield* Clock.currentTimeMillis)
    return yield* outbox.append(
      { type: "order.created", aggregateId: order.orderId, payload: orderCreatedData(order, "reader-1") },
      now
    )
  })

interface Row {
  readonly id: string
  readonly aggregate_id: string
  readonly attempts: number
  readonly next_attempt_at: string
  readonly processed_at: string | null
  readonly dead_at: string | null
  readonly last_error: string | null
  readonly claimed_by: string | null
  readonly lease_until: string | null
}
/** Every outbox row in insertion order (`rowid` on SQLite, `seq` on Postgres). */
const rows = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<Row>`SELECT id, aggregate_id, attempts, next_attempt_at, processed_at, dead_at, last_error, claimed_by, lease_until
           FROM outbox_events
           ORDER BY ${sql.onDialectOrElse({ pg: () => sql.literal("seq"), orElse: () => sql.literal("rowid") })}`.pipe(
    Effect.orDie
  )
)
const onlyRow = Effect.map(rows, (all) => {
  expect(all).toHaveLength(1)
  return all[0]!
})

const iso = (ms: number) => new Date(ms).toISOString()

describe("outbox backoff", () => {
  const policy: BackoffPolicy = { base: Duration.seconds(1), max: Duration.seconds(30), jitter: false }

  it.effect("waits 1, 2, 4, 8, 16 s, then 30 s (the cap) after successive failures", () =>
    Effect.gen(function* () {
      const waits = yield* Effect.forEach([1, 2, 3, 4, 5, 6, 7], (n) => retryDelay(policy, n))
      expect(waits.map(Duration.toMillis)).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000])
    })
  )

  it.effect("with jitter, each wait stays within 80%..120% of the plain one", () =>
    Effect.gen(function* () {
      for (const n of [1, 2, 3, 4, 5, 6]) {
        const plain = Duration.toMillis(yield* retryDelay(policy, n))
        for (let i = 0; i < 20; i++) {
          const jittered = Duration.toMillis(yield* retryDelay({ ...policy, jitter: true }, n))
          expect(jittered).toBeGreaterThanOrEqual(plain * 0.8)
          expect(jittered).toBeLessThanOrEqual(plain * 1.2)
        }
      }
    })
  )
})

describe.each(testDatabases)("outbox on $name", (database) => {
  /** A migrated database with the real order repository and outbox on it. */
  const Db = Layer.provideMerge(Layer.provideMerge(OrderRepoLive, Layer.merge(OutboxLive, IdempotencyStoreLive)), database.layer())

  describe("outbox backoff", () => {
    it.effect("a failing event is tried again exactly when its backoff ends (TestClock)", () =>
      Effect.gen(function* () {
        const rec = recordingPublisher(() => true)
        const worker = yield* workerWith(rec.publisher)
        yield* confirmedOrder()

        expect((yield* worker.runBatch).failed).toBe(1) // attempt 1 at t = 0
        let row = yield* onlyRow
        expect(row.attempts).toBe(1)
        expect(row.next_attempt_at).toBe(iso(1000))
        expect(row.last_error).toBe("receiver down (attempt 1)")
        expect(row.claimed_by).toBeNull()

        // Not a millisecond early...
        yield* TestClock.adjust(Duration.millis(999))
        expect((yield* worker.runBatch).claimed).toBe(0)
        // ...and on time: 1 s, then 2 s, 4 s, 4 s (max 4 s) apart.
        for (const wait of [1, 2000, 4000, 4000]) {
          yield* TestClock.adjust(Duration.millis(wait - 1))
          expect((yield* worker.runBatch).claimed).toBe(0)
          yield* TestClock.adjust(Duration.millis(1))
          expect((yield* worker.runBatch).claimed).toBe(1)
        }
        expect(rec.attempts.map((a) => a.at)).toEqual([0, 1000, 3000, 7000, 11000])
        row = yield* onlyRow
        expect(row.attempts).toBe(5)
        expect(row.next_attempt_at).toBe(iso(15000))
        expect(row.processed_at).toBeNull()
        expect((yield* worker.status).events).toEqual({ published: 0, failed: 5, dead: 0, duplicates: 0, leaseLost: 0 })
      }).pipe(Effect.provide(Db))
    )
  })

  describe("outbox delivery", () => {
    it.effect("publishes a confirmed order as a CloudEvent (id = row id, data = the saga's payload) and marks it", () =>
      Effect.gen(function* () {
        const rec = recordingPublisher()
        const worker = yield* workerWith(rec.publisher)
        yield* TestClock.setTime(Date.parse("2026-11-29T12:00:00.000Z"))
        const order = yield* confirmedOrder(2)
        const [stored] = yield* rows
        yield* TestClock.adjust(Duration.millis(250))

        expect(yield* worker.runBatch).toEqual({ claimed: 1, published: 1, failed: 0, dead: 0 })
        expect(rec.delivered).toEqual([
          {
            specversion: "1.0",
            id: stored!.id,
            source: "bookverse-checkout",
            type: "order.created",
            time: "2026-11-29T12:00:00.000Z",
            datacontenttype: "application/json",
            data: {
              orderId: order.orderId,
              userId: "reader-1",
              total: 33.98,
              currency: "USD",
              items: [{ bookId: BOOK, qty: 2, unitPrice: 16.99, lineTotal: 33.98 }],
              createdAt: "2026-11-29T12:00:00.000Z"
            }
          }
        ])
        const row = yield* onlyRow
        expect(row.processed_at).toBe("2026-11-29T12:00:00.250Z")
        expect(row.claimed_by).toBeNull()
        expect(row.attempts).toBe(0)
        expect((yield* worker.runBatch).claimed).toBe(0)
        const status = yield* worker.status
        expect(status.events.published).toBe(1)
        expect(status.outbox).toEqual({ pending: 0, dead: 0, oldestPendingAt: undefined, lagSeconds: 0 })
      }).pipe(Effect.provide(Db))
    )

    it.effect("reports the outbox lag: seconds since the oldest undelivered row was written", () =>
      Effect.gen(function* () {
        const worker = yield* workerWith(recordingPublisher(() => true).publisher)
        yield* confirmedOrder()
        yield* TestClock.adjust(Duration.seconds(3))
        yield* confirmedOrder()
        yield* TestClock.adjust(Duration.millis(4500))
        const status = yield* worker.status
        expect(status.outbox).toEqual({ pending: 2, dead: 0, oldestPendingAt: new Date(0), lagSeconds: 7.5 })
      }).pipe(Effect.provide(Db))
    )
  })

  describe("outbox dead-lettering", () => {
    it.effect("after OUTBOX_MAX_ATTEMPTS failed attempts the row is parked dead, kept, logged as an error, never retried", () =>
      Effect.gen(function* () {
        const logs: Array<{ level: string; message: string; eventId: unknown }> = []
        const capture = Logger.make(({ annotations, logLevel, message }) => {
          logs.push({
            level: logLevel.label,
            message: Array.isArray(message) ? message.join(" ") : String(message),
            eventId: HashMap.get(annotations, "eventId").pipe((o) => (o._tag === "Some" ? o.value : undefined))
          })
        })
        const rec = recordingPublisher(() => true)
        const worker = yield* workerWith(rec.publisher, { maxAttempts: 3 })
        yield* confirmedOrder()
        const { id } = yield* onlyRow

        const run = worker.runBatch.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)))
        expect((yield* run).failed).toBe(1) // t = 0
        yield* TestClock.adjust(Duration.seconds(1))
        expect((yield* run).failed).toBe(1) // t = 1 s
        yield* TestClock.adjust(Duration.seconds(2))
        expect(yield* run).toEqual({ claimed: 1, published: 0, failed: 0, dead: 1 }) // t = 3 s: the 3rd attempt
        const row = yield* onlyRow
        expect(row).toMatchObject({ attempts: 3, dead_at: iso(3000), processed_at: null, claimed_by: null })
        expect(row.last_error).toBe("receiver down (attempt 3)")

        yield* TestClock.adjust(Duration.hours(1))
        expect((yield* run).claimed).toBe(0)
        expect(rec.attempts).toHaveLength(3)
        expect(logs.filter((l) => l.level === "ERROR")).toEqual([{ level: "ERROR", message: "outbox event parked dead", eventId: id }])
        expect(logs.filter((l) => l.level === "WARN").map((l) => l.message)).toEqual([
          "outbox event delivery failed; will retry",
          "outbox event delivery failed; will retry"
        ])
        const status = yield* worker.status
        expect(status.events).toEqual({ published: 0, failed: 2, dead: 1, duplicates: 0, leaseLost: 0 })
        expect(status.outbox).toMatchObject({ pending: 0, dead: 1, lagSeconds: 0 })
      }).pipe(Effect.provide(Db))
    )

    it.effect("a payload outside the contract is parked dead at once: waiting cannot fix it", () =>
      Effect.gen(function* () {
        const rec = recordingPublisher()
        const worker = yield* workerWith(rec.publisher)
        const outbox = yield* Outbox
        yield* outbox.append({ type: "order.created", aggregateId: "o-1", payload: { orderId: "not-a-uuid" } }, new Date(0))
        yield* outbox.append({ type: "order.shipped", aggregateId: "o-2", payload: {} }, new Date(0))
        expect(yield* worker.runBatch).toEqual({ claimed: 2, published: 0, failed: 0, dead: 2 })
        const [bad, unknown] = yield* rows
        expect(bad!.attempts).toBe(1)
        expect(bad!.last_error).toContain("payload does not match the order.created contract")
        expect(bad!.last_error).toContain('Expected a Universally Unique Identifier, actual "not-a-uuid"')
        expect(unknown!.last_error).toBe('no event contract for type "order.shipped"')
        expect(rec.attempts).toEqual([])
      }).pipe(Effect.provide(Db))
    )
  })

  describe("outbox order per order", () => {
    it.effect("an order's rows go out in creation order; a failing row holds back the later ones of its order only", () =>
      Effect.gen(function* () {
        // Order A has three rows (two written in the same millisecond), order B one. A's first row
        // fails on its first attempt.
        const a = yield* confirmedOrder()
        const a2 = yield* appendFor(a) // same millisecond as A's first row
        yield* TestClock.adjust(Duration.millis(1))
        const a3 = yield* appendFor(a)
        const b = yield* confirmedOrder()
        const [a1] = (yield* rows).map((r) => r.id)
        const rec = recordingPublisher((event, n) => event.id === a1 && n === 1)
        const worker = yield* workerWith(rec.publisher)

        // One row per order per batch: A's first (fails) and B's.
        expect(yield* worker.runBatch).toEqual({ claimed: 2, published: 1, failed: 1, dead: 0 })
        // A's later rows wait for its first, even though they are due.
        expect((yield* worker.runBatch).claimed).toBe(0)
        yield* TestClock.adjust(Duration.seconds(1))
        expect((yield* worker.runBatch).published).toBe(1)
        expect((yield* worker.runBatch).published).toBe(1)
        expect((yield* worker.runBatch).published).toBe(1)
        expect((yield* worker.runBatch).claimed).toBe(0)

        expect(rec.attempts.filter((x) => x.orderId === a.orderId).map((x) => [x.id, x.ok])).toEqual([
          [a1, false],
          [a1, true],
          [a2, true],
          [a3, true]
        ])
        expect(rec.delivered.filter((e) => e.data.orderId === b.orderId)).toHaveLength(1)
        expect((yield* rows).every((r) => r.processed_at !== null)).toBe(true)
      }).pipe(Effect.provide(Db))
    )

    it.effect("a dead row keeps holding back its order's later rows (order over progress)", () =>
      Effect.gen(function* () {
        const a = yield* confirmedOrder()
        yield* TestClock.adjust(Duration.millis(1))
        yield* appendFor(a)
        const [a1] = (yield* rows).map((r) => r.id)
        const rec = recordingPublisher((event) => event.id === a1)
        const worker = yield* workerWith(rec.publisher, { maxAttempts: 1 })
        expect((yield* worker.runBatch).dead).toBe(1)
        yield* TestClock.adjust(Duration.hours(1))
        expect((yield* worker.runBatch).claimed).toBe(0)
        expect((yield* worker.status).outbox).toMatchObject({ pending: 1, dead: 1 })
      }).pipe(Effect.provide(Db))
    )
  })

  describe("outbox leases", () => {
    it.effect("a row leased to a worker that died is not sent by another until the lease ends; then it is", () =>
      Effect.gen(function* () {
        const outbox = yield* Outbox
        yield* confirmedOrder()
        // Worker "dead" claims the row with a 30 s lease, then dies between claim and mark.
        const claimed = yield* outbox.claimDue({ worker: "dead", limit: 10, now: new Date(0), leaseUntil: new Date(30_000) })
        expect(claimed).toHaveLength(1)
        expect(yield* onlyRow).toMatchObject({ claimed_by: "dead", lease_until: iso(30_000) })

        const rec = recordingPublisher()
        const survivor = yield* workerWith(rec.publisher, { workerId: "survivor" })
        expect((yield* survivor.runBatch).claimed).toBe(0)
        yield* TestClock.adjust(Duration.millis(29_999))
        expect((yield* survivor.runBatch).claimed).toBe(0)
        expect(rec.attempts).toEqual([])

        yield* TestClock.adjust(Duration.millis(1))
        expect(yield* survivor.runBatch).toEqual({ claimed: 1, published: 1, failed: 0, dead: 0 })
        expect(rec.delivered.map((e) => e.id)).toEqual([claimed[0]!.id])
        expect((yield* onlyRow).processed_at).toBe(iso(30_000))
        // The dead worker's late mark is refused: the row was no longer its.
        expect(yield* outbox.markPublished(claimed[0]!.id, "dead", new Date(31_000))).toBe(false)
        expect(yield* outbox.markFailed(claimed[0]!.id, "dead", "late", new Date(31_000))).toBe(false)
        expect((yield* onlyRow).processed_at).toBe(iso(30_000))
      }).pipe(Effect.provide(Db))
    )

    it.effect("two workers polling the same outbox never both send a row", () =>
      Effect.gen(function* () {
        for (let i = 0; i < 60; i++) yield* confirmedOrder()
        const rec = recordingPublisher()
        const one = yield* workerWith(rec.publisher, { workerId: "one", batchSize: 7 })
        const two = yield* workerWith(rec.publisher, { workerId: "two", batchSize: 7 })
        const reports = yield* Effect.all(
          Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? one : two).runBatch),
          { concurrency: "unbounded" }
        )
        const ids = rec.attempts.map((x) => x.id)
        expect(reports.reduce((n, r) => n + r.claimed, 0)).toBe(60)
        expect(ids).toHaveLength(60)
        expect(new Set(ids).size).toBe(60)
        expect((yield* rows).every((r) => r.processed_at !== null)).toBe(true)
      }).pipe(Effect.provide(Db))
    )
  })

  describe("outbox worker shutdown", () => {
    it.effect("closing the worker (SIGTERM) lets the batch in flight finish and mark its rows", () =>
      Effect.gen(function* () {
        yield* confirmedOrder()
        const started = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const delivered: Array<string> = []
        const slow = EventPublisher.of({
          target: { kind: "nats", servers: "test", stream: "S", subject: "s" },
          publish: (event) =>
            Deferred.succeed(started, undefined).pipe(
              Effect.zipRight(Deferred.await(release)),
              Effect.map(() => {
                delivered.push(event.id)
                return { duplicate: false }
              })
            )
        })
        const scope = yield* Scope.make()
        const worker = yield* Layer.buildWithScope(OutboxWorkerLive(OPTIONS), scope).pipe(
          Effect.provideService(EventPublisher, slow),
          Effect.map((ctx) => Context.get(ctx, OutboxWorker))
        )
        yield* Deferred.await(started)
        const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
        yield* Effect.yieldNow()
        expect(closing.unsafePoll()).toBeNull() // still waiting for the batch
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(closing)
        expect(delivered).toHaveLength(1)
        expect((yield* onlyRow).processed_at).not.toBeNull()
        expect((yield* worker.status).events.published).toBe(1)
      }).pipe(Effect.provide(Db))
    )
  })
})

describe("outbox configuration", () => {
  const load = <A, E>(config: Effect.Effect<A, E>, env: Record<string, string>) =>
    config.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))), Effect.either)

  it.effect("worker defaults, and a lease shorter than twice the publish timeout names OUTBOX_LEASE_SECONDS", () =>
    Effect.gen(function* () {
      const defaults = yield* load(WorkerConfig, {})
      expect(Either.isRight(defaults)).toBe(true)
      if (Either.isRight(defaults)) {
        const o = defaults.right
        expect([o.batchSize, o.maxAttempts, o.afterPublish]).toEqual([100, 10, undefined])
        expect([o.lease, o.publishTimeout, o.pollInterval, o.backoff.base, o.backoff.max].map(Duration.toMillis)).toEqual([
          60_000, 10_000, 500, 1_000, 300_000
        ])
      }
      const short = yield* load(WorkerConfig, { OUTBOX_LEASE_SECONDS: "15" })
      expect(Either.isLeft(short) && String(short.left)).toContain("OUTBOX_LEASE_SECONDS")
      const bad = yield* load(WorkerConfig, { OUTBOX_MAX_ATTEMPTS: "0" })
      expect(Either.isLeft(bad) && String(bad.left)).toContain("OUTBOX_MAX_ATTEMPTS")
      const hook = yield* load(WorkerConfig, { OUTBOX_TEST_CRASH_AFTER_PUBLISH: "3" })
      expect(Either.isRight(hook) && hook.right.afterPublish !== undefined).toBe(true)
    })
  )

  it.effect("the destination: NATS with default stream and subject, the webhook, none, or an error for both", () =>
    Effect.gen(function* () {
      const nats = yield* load(PublisherConfig, { EVENTS_NATS_URL: "nats://127.0.0.1:4222" })
      expect(Either.isRight(nats) && nats.right).toMatchObject({
        kind: "nats",
        options: { servers: "nats://127.0.0.1:4222", stream: "BOOKVERSE_ORDERS", subject: "bookverse.orders.created" }
      })
      const webhook = yield* load(PublisherConfig, { EVENTS_WEBHOOK_URL: "https://hooks.example.test/orders" })
      expect(Either.isRight(webhook) && webhook.right.kind).toBe("webhook")
      expect(yield* load(PublisherConfig, {})).toEqual(Either.right({ kind: "none" }))
      const both = yield* load(PublisherConfig, { EVENTS_NATS_URL: "nats://x:1", EVENTS_WEBHOOK_URL: "http://y/" })
      expect(Either.isLeft(both) && String(both.left)).toContain("EVENTS_NATS_URL or EVENTS_WEBHOOK_URL, not both")
      const badSubject = yield* load(PublisherConfig, { EVENTS_NATS_URL: "nats://x:1", EVENTS_NATS_SUBJECT: "orders.*" })
      expect(Either.isLeft(badSubject) && String(badSubject.left)).toContain("EVENTS_NATS_SUBJECT")
      const badUrl = yield* load(PublisherConfig, { EVENTS_WEBHOOK_URL: "ftp://y/" })
      expect(Either.isLeft(badUrl) && String(badUrl.left)).toContain("EVENTS_WEBHOOK_URL")
    })
  )

  it("NATS subject patterns: * is one token, > the rest", () => {
    expect(subjectMatches("bookverse.orders.created", "bookverse.orders.created")).toBe(true)
    expect(subjectMatches("bookverse.orders.*", "bookverse.orders.created")).toBe(true)
    expect(subjectMatches("bookverse.>", "bookverse.orders.created")).toBe(true)
    expect(subjectMatches("bookverse.*", "bookverse.orders.created")).toBe(false)
    expect(subjectMatches("bookverse.orders.created.>", "bookverse.orders.created")).toBe(false)
    expect(subjectMatches("other.orders.created", "bookverse.orders.created")).toBe(false)
  })
})
