/**
 * Two outbox worker processes deliver to an HTTP webhook receiver that fails the first attempts:
 * every event arrives, in creation order per order, no event is sent by both workers at once, and
 * the receiver deduplicates by `Idempotency-Key` the events whose acknowledgement it "lost".
 */
import { SqlClient } from "@effect/sql"
import { Effect, Either, Layer, ManagedRuntime, Schema } from "effect"
import { randomUUID } from "node:crypto"
import { createServer, type Server } from "node:http"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { BookId, OrderId, UserId } from "../../src/domain/Ids.js"
import { Cents } from "../../src/domain/Money.js"
import { Order, OrderItem } from "../../src/domain/Order.js"
import { parseDatabaseUrl, sqlClientLayer } from "../../src/layers/Database.js"
import { orderCreatedData } from "../../src/services/Checkout.js"
import { IdempotencyStoreLive } from "../../src/services/IdempotencyStore.js"
import { OrderRepo, OrderRepoLive } from "../../src/services/OrderRepo.js"
import { Outbox, OutboxLive } from "../../src/services/Outbox.js"
import { contractValidator } from "../support/contract.js"
import { runToExit, waitFor } from "../support/process.js"
import { e2eDatabases, type E2eDatabase } from "./databases.js"
import { freePort, type Running, startProcess, tempDir } from "./harness.js"

const ORDERS = 20
/** Rows per order: the confirm's `order.created`, then two more appended for the same order. */
const PER_ORDER = 3
const EVENTS = ORDERS * PER_ORDER

const Delivered = Schema.Struct({ id: Schema.String, data: Schema.Struct({ orderId: Schema.String }) })
const decodeDelivered = Schema.decodeUnknownSync(Delivered)
const Health = Schema.Struct({
  events: Schema.Struct({ published: Schema.Number, failed: Schema.Number, dead: Schema.Number, leaseLost: Schema.Number }),
  outbox: Schema.Struct({ pending: Schema.Number, dead: Schema.Number })
})
const decodeHealth = Schema.decodeUnknownSync(Health)

/** One request the receiver got: which event, when it started and ended, and what it answered. */
interface Delivery {
  readonly key: string
  readonly eventId: string
  readonly orderId: string
  readonly body: string
  readonly contentType: string
  readonly start: number
  end: number
  status: number
  outcome: "refused" | "stored-but-answer-lost" | "stored" | "duplicate"
}

/**
 * A webhook receiver that deduplicates by `Idempotency-Key`. It refuses every event's first
 * attempt (503); for every fourth event it stores the second attempt but answers 500, as if the
 * answer were lost; otherwise it stores the event and answers 204. A key it already stored gets
 * 200 and is not stored again.
 */
const startReceiver = async () => {
  const deliveries: Array<Delivery> = []
  const stored = new Map<string, string>() // key -> body, in arrival order
  const attempts = new Map<string, number>()
  const loseAnswerOf = new Set<string>()
  let seen = 0
  const server: Server = createServer((req, res) => {
    let body = ""
    req.on("data", (chunk: Buffer) => (body += chunk.toString()))
    req.on("end", () => {
      const key = String(req.headers["idempotency-key"] ?? "")
      const event = decodeDelivered(JSON.parse(body))
      const n = (attempts.get(key) ?? 0) + 1
      attempts.set(key, n)
      if (n === 1 && seen++ % 4 === 0) loseAnswerOf.add(key)
      const delivery: Delivery = {
        key,
        eventId: event.id,
        orderId: event.data.orderId,
        body,
        contentType: String(req.headers["content-type"]),
        start: Date.now(),
        end: 0,
        status: 0,
        outcome: "refused"
      }
      deliveries.push(delivery)
      const answer = (status: number, outcome: Delivery["outcome"]) => {
        // A little latency, so that overlapping sends of one event would show.
        setTimeout(() => {
          delivery.status = status
          delivery.outcome = outcome
          delivery.end = Date.now()
          res.writeHead(status).end()
        }, 5)
      }
      if (stored.has(key)) return answer(200, "duplicate")
      if (n === 1) return answer(503, "refused")
      stored.set(key, body)
      return loseAnswerOf.has(key) ? answer(500, "stored-but-answer-lost") : answer(204, "stored")
    })
  })
  const port = await freePort()
  await new Promise<void>((ok) => server.listen(port, "127.0.0.1", ok))
  return {
    url: `http://127.0.0.1:${port}/events`,
    deliveries,
    stored,
    lostAnswers: () => loseAnswerOf.size,
    close: () => new Promise<void>((ok) => server.close(() => ok()))
  }
}

describe.each(e2eDatabases)("outbox workers -> HTTP webhook [$name]", (kind) => {
  const dir = tempDir()
  let database: E2eDatabase
  let receiver: Awaited<ReturnType<typeof startReceiver>>
  let db: ManagedRuntime.ManagedRuntime<SqlClient.SqlClient | OrderRepo | Outbox, unknown>
  const workers: Array<Running> = []
  /** Each order's outbox row ids in creation order. */
  const expected = new Map<string, Array<string>>()

  beforeAll(async () => {
    receiver = await startReceiver()
    database = await kind.make(dir.dir)
    const migrated = await runToExit("src/bin/migrate.ts", { DATABASE_URL: database.url })
    expect(migrated.code, migrated.output).toBe(0)
    db = ManagedRuntime.make(
      Layer.provideMerge(
        Layer.provideMerge(OrderRepoLive, Layer.merge(OutboxLive, IdempotencyStoreLive)),
        sqlClientLayer(Either.getOrThrow(parseDatabaseUrl(database.url)), 2)
      )
    )
    // Creation order interleaves the orders: round r of every order, then round r + 1.
    await db.runPromise(
      Effect.gen(function* () {
        const repo = yield* OrderRepo
        const outbox = yield* Outbox
        const base = Date.UTC(2026, 10, 29, 12, 0, 0)
        const orders = Array.from({ length: ORDERS }, (_, i) => {
          const item = OrderItem.make({ bookId: BookId.make(randomUUID()), qty: 1, unitPrice: Cents.make(999), lineTotal: Cents.make(999) })
          return Order.make({
            orderId: OrderId.make(randomUUID()),
            status: "CONFIRMED",
            total: item.lineTotal,
            currency: "USD",
            items: [item],
            createdAt: new Date(base + i)
          })
        })
        for (const order of orders) {
          const payload = orderCreatedData(order, "reader-webhook")
          yield* repo.insertPending({
            orderId: order.orderId,
            userId: UserId.make("reader-webhook"),
            idempotencyKey: null,
            items: order.items,
            total: order.total,
            createdAt: order.createdAt,
            leaseUntil: order.createdAt
          })
          yield* repo.confirm(order.orderId, { type: "order.created", aggregateId: order.orderId, payload }, order.createdAt)
        }
        for (let round = 1; round < PER_ORDER; round++) {
          for (const [i, order] of orders.entries()) {
            const payload = orderCreatedData(order, "reader-webhook")
            yield* outbox.append(
              { type: "order.created", aggregateId: order.orderId, payload },
              new Date(base + round * 1000 + i)
            )
          }
        }
        const sql = yield* SqlClient.SqlClient
        const seq = sql.onDialectOrElse({ pg: () => sql.literal("seq"), orElse: () => sql.literal("rowid") })
        const rows = yield* sql<{ id: string; aggregate_id: string }>`
          SELECT id, aggregate_id FROM outbox_events ORDER BY created_at, ${seq}`
        for (const row of rows) expected.set(row.aggregate_id, [...(expected.get(row.aggregate_id) ?? []), row.id])
      })
    )
  }, 60_000)

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.kill()))
    await receiver?.close()
    await db?.dispose()
    await database?.drop()
    dir.remove()
  })

  it(
    "every event arrives once in the receiver's store, in creation order per order, deduplicable by Idempotency-Key",
    async () => {
      const env = {
        DATABASE_URL: database.url,
        EVENTS_WEBHOOK_URL: receiver.url,
        OUTBOX_BATCH_SIZE: "8",
        OUTBOX_LEASE_SECONDS: "20", // long enough that a busy machine never lets a lease lapse mid-publish
        OUTBOX_PUBLISH_TIMEOUT_SECONDS: "1",
        OUTBOX_POLL_INTERVAL_SECONDS: "0.05",
        OUTBOX_BACKOFF_BASE_SECONDS: "0.05",
        OUTBOX_BACKOFF_MAX_SECONDS: "0.2"
      }
      // Two workers on one database at once.
      workers.push(...(await Promise.all([
        startProcess("src/bin/worker.ts", { ...env, OUTBOX_WORKER_ID: "worker-1" }),
        startProcess("src/bin/worker.ts", { ...env, OUTBOX_WORKER_ID: "worker-2" })
      ])))
      const healths = await waitFor(
        async () => {
          const all = await Promise.all(
            workers.map(async (w) => decodeHealth(await (await fetch(`${w.url}/health`)).json()))
          )
          return all.every((h) => h.outbox.pending === 0) ? all : undefined
        },
        45_000,
        "the outbox to drain"
      )

      // Every event is stored exactly once, under its own id, as a valid CloudEvent.
      const validate = contractValidator("order.created.schema.json")
      const allIds = [...expected.values()].flat()
      expect(receiver.stored.size).toBe(EVENTS)
      expect(new Set(receiver.stored.keys())).toEqual(new Set(allIds))
      for (const [key, body] of receiver.stored) {
        const json: unknown = JSON.parse(body)
        expect(validate(json), JSON.stringify(validate.errors)).toBe(true)
        expect(decodeDelivered(json).id).toBe(key)
      }

      // Per order: stored in creation order, and no request for a later event was made before the
      // earlier one had been answered 2xx.
      const storedOrder = [...receiver.stored.keys()]
      for (const [orderId, ids] of expected) {
        expect(storedOrder.filter((id) => ids.includes(id)), orderId).toEqual(ids)
        const requests = receiver.deliveries.filter((d) => d.orderId === orderId)
        for (let k = 1; k < ids.length; k++) {
          const firstOfNext = Math.min(...requests.filter((d) => d.eventId === ids[k]).map((d) => d.start))
          const acked = requests.filter((d) => d.eventId === ids[k - 1] && d.status >= 200 && d.status < 300)
          expect(acked).toHaveLength(1)
          expect(firstOfNext).toBeGreaterThanOrEqual(acked[0]!.end)
        }
      }

      // The same event was never in flight twice at once (two workers, one lease per row), and
      // every delivery carried the CloudEvent media type and its id as Idempotency-Key.
      for (const id of allIds) {
        const sends = receiver.deliveries.filter((d) => d.key === id).sort((x, y) => x.start - y.start)
        for (let i = 1; i < sends.length; i++) expect(sends[i]!.start).toBeGreaterThanOrEqual(sends[i - 1]!.end)
      }
      expect(receiver.deliveries.every((d) => d.key === d.eventId)).toBe(true)
      expect(new Set(receiver.deliveries.map((d) => d.contentType))).toEqual(
        new Set(["application/cloudevents+json; charset=utf-8"])
      )

      // Redeliveries of events whose answer was lost carried the same body and were recognised.
      const lost = receiver.deliveries.filter((d) => d.outcome === "stored-but-answer-lost")
      const duplicates = receiver.deliveries.filter((d) => d.outcome === "duplicate")
      expect(lost).toHaveLength(receiver.lostAnswers())
      expect(lost.length).toBe(EVENTS / 4)
      expect(duplicates.map((d) => d.key).sort()).toEqual(lost.map((d) => d.key).sort())
      for (const d of duplicates) expect(d.body).toBe(receiver.stored.get(d.key))
      expect(receiver.deliveries).toHaveLength(EVENTS * 2 + lost.length)

      // The workers' counters add up: one publish per event, a failed attempt per 5xx answer.
      const sum = (pick: (h: (typeof healths)[number]) => number) => healths.reduce((n, h) => n + pick(h), 0)
      expect(sum((h) => h.events.published)).toBe(EVENTS)
      expect(sum((h) => h.events.failed)).toBe(EVENTS + lost.length)
      expect(sum((h) => h.events.dead + h.events.leaseLost)).toBe(0)
      expect(healths.map((h) => h.outbox.dead)).toEqual([0, 0])

      expect(await Promise.all(workers.map((w) => w.stop()))).toEqual([0, 0])
    },
    90_000
  )
})
