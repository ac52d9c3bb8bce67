import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Option, Schema, TestClock } from "effect"
import { fingerprint } from "../../src/domain/Fingerprint.js"
import { OrderId } from "../../src/domain/Ids.js"
import { CreateOrderRequest, priceLines, type StockState } from "../../src/domain/Order.js"
import { InventoryUnavailable } from "../../src/services/InventoryClient.js"
import {
  Checkout,
  IdempotencyStore,
  InMemoryInventory,
  InventoryClient,
  OrderRepo,
  Recovery,
  testCheckoutLayer
} from "../../src/testing.js"
import { InMemoryDatabase } from "../../src/layers/Database.js"
import { testDatabases } from "../support/databases.js"

const A = "11111111-1111-4111-8111-111111111111"
const B = "22222222-2222-4222-8222-222222222222"
const request = Schema.decodeUnknownSync(CreateOrderRequest)({
  userId: "reader-1",
  items: [
    { bookId: A, qty: 2, unitPrice: 10 },
    { bookId: B, qty: 1, unitPrice: 5 }
  ]
})

/**
 * Reproduces what a process that died mid-saga leaves behind: the key claimed, the order PENDING,
 * the adjusts that reached the inventory applied (`applied`), the journal as far as it got
 * (`journaled`), and the payment outcome.
 */
const abandonedOrder = (options: {
  readonly applied: ReadonlyArray<number>
  readonly journaled: ReadonlyArray<StockState>
  readonly payment: "none" | "succeeded" | "declined"
  readonly key: string
}) =>
  Effect.gen(function* () {
    const repo = yield* OrderRepo
    const keys = yield* IdempotencyStore
    const inventory = yield* InventoryClient
    const orderId = OrderId.make("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa")
    const scope = { userId: request.userId, key: options.key, fingerprint: fingerprint(request) }
    const now = new Date(0)
    yield* keys.claim(scope, now)
    const { items, total } = priceLines(request.items)
    yield* repo.insertPending({
      orderId,
      userId: request.userId,
      idempotencyKey: options.key,
      items,
      total,
      createdAt: now,
      leaseUntil: new Date(30_000)
    })
    yield* keys.attachOrder(scope, orderId)
    for (const lineNo of options.applied) {
      const item = items[lineNo]!
      yield* Effect.orDie(inventory.adjust(item.bookId, -item.qty, `order:${orderId}:${lineNo}`))
    }
    for (const [lineNo, state] of options.journaled.entries()) yield* repo.setLineStates(orderId, [lineNo], state)
    if (options.payment !== "none") yield* repo.setPayment(orderId, options.payment, null)
    return orderId
  })

const statusOf = (orderId: OrderId) =>
  Effect.map(Effect.flatMap(OrderRepo, (r) => r.findRecord(orderId)), Option.map((r) => [r.order.status, r.lineStates]))

const outbox = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ aggregate_id: string }>`SELECT aggregate_id FROM outbox_events`.pipe(Effect.orDie)
)

describe.each(testDatabases)("Recovery [$name]", (db) => {
  it.effect("crash after a take, before payment: every applied take is given back (journaled or not), CANCELLED, key released", () =>
    Effect.gen(function* () {
      const inventory = yield* InMemoryInventory
      const recovery = yield* Recovery
      // line 0 taken and journaled; line 1 applied at the inventory but the process died before journaling it
      const orderId = yield* abandonedOrder({ applied: [0, 1], journaled: ["taken", "pending"], payment: "none", key: "k" })
      expect([yield* inventory.stockOf(A), yield* inventory.stockOf(B)]).toEqual([8, 4])

      // within the lease nothing happens: the saga might still be running
      expect((yield* recovery.runOnce).examined).toBe(0)
      yield* TestClock.adjust(Duration.seconds(31))
      const report = yield* recovery.runOnce
      expect(report.outcomes.cancelled).toBe(1)
      expect([yield* inventory.stockOf(A), yield* inventory.stockOf(B)]).toEqual([10, 5])
      expect(yield* statusOf(orderId)).toEqual(Option.some(["CANCELLED", ["returned", "returned"]]))
      // the key was released: the client's retry places a new order
      const placed = yield* (yield* Checkout).placeOrder(request, Option.some("k"))
      expect(placed.replayed).toBe(false)
      expect(placed.order.orderId).not.toBe(orderId)
      // a second pass finds nothing to do, and nothing was given back twice
      yield* TestClock.adjust(Duration.seconds(31))
      expect((yield* recovery.runOnce).examined).toBe(0)
      const giveBacks = (yield* inventory.transactions).filter((t) => t.notes?.startsWith("compensate:"))
      expect(giveBacks.map((t) => [t.bookId, t.quantityChange])).toEqual([[B, 1], [A, 2]])
    }).pipe(Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 10, [B]: 5 } }))))

  it.effect("crash after payment, before confirm: CONFIRMED with its outbox event; the key replays it", () =>
    Effect.gen(function* () {
      const inventory = yield* InMemoryInventory
      const orderId = yield* abandonedOrder({ applied: [0, 1], journaled: ["taken", "taken"], payment: "succeeded", key: "paid" })
      yield* TestClock.adjust(Duration.seconds(31))
      const report = yield* (yield* Recovery).runOnce
      expect(report.outcomes.confirmed).toBe(1)
      expect(yield* statusOf(orderId)).toEqual(Option.some(["CONFIRMED", ["taken", "taken"]]))
      expect([yield* inventory.stockOf(A), yield* inventory.stockOf(B)]).toEqual([8, 4])
      expect(yield* outbox).toEqual([{ aggregate_id: orderId }])
      const replay = yield* (yield* Checkout).placeOrder(request, Option.some("paid"))
      expect(replay.replayed).toBe(true)
      expect(replay.order.orderId).toBe(orderId)
      expect(replay.order.status).toBe("CONFIRMED")
    }).pipe(Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 10, [B]: 5 } }))))

  it.effect("an unknown line that never reached the inventory is not given back", () =>
    Effect.gen(function* () {
      const inventory = yield* InMemoryInventory
      const orderId = yield* abandonedOrder({ applied: [0], journaled: ["taken", "unknown"], payment: "none", key: "u" })
      yield* TestClock.adjust(Duration.seconds(31))
      yield* (yield* Recovery).runOnce
      expect(yield* statusOf(orderId)).toEqual(Option.some(["CANCELLED", ["returned", "pending"]]))
      expect([yield* inventory.stockOf(A), yield* inventory.stockOf(B)]).toEqual([10, 5])
    }).pipe(Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 10, [B]: 5 } }))))

  it.effect("a give-back that fails is retried with backoff until it succeeds; the order stays PENDING meanwhile", () =>
    Effect.gen(function* () {
      const inventory = yield* InMemoryInventory
      const recovery = yield* Recovery
      const orderId = yield* abandonedOrder({ applied: [0], journaled: ["taken", "pending"], payment: "none", key: "r" })
      yield* inventory.failNextAdjust(A, new InventoryUnavailable({ reason: "down" }), { notePrefix: "compensate:" })
      yield* inventory.failNextAdjust(A, new InventoryUnavailable({ reason: "still down" }), { notePrefix: "compensate:" })
      yield* TestClock.adjust(Duration.seconds(31))
      expect((yield* recovery.runOnce).outcomes.deferred).toBe(1)
      expect(yield* statusOf(orderId)).toEqual(Option.some(["PENDING", ["return_failed", "pending"]]))
      // first backoff: 5 s
      yield* TestClock.adjust(Duration.seconds(4))
      expect((yield* recovery.runOnce).examined).toBe(0)
      yield* TestClock.adjust(Duration.seconds(1))
      expect((yield* recovery.runOnce).outcomes.deferred).toBe(1)
      // second backoff: 10 s
      yield* TestClock.adjust(Duration.seconds(9))
      expect((yield* recovery.runOnce).examined).toBe(0)
      yield* TestClock.adjust(Duration.seconds(1))
      expect((yield* recovery.runOnce).outcomes.cancelled).toBe(1)
      expect(yield* statusOf(orderId)).toEqual(Option.some(["CANCELLED", ["returned", "pending"]]))
      expect(yield* inventory.stockOf(A)).toBe(10)
    }).pipe(Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 10, [B]: 5 } }))))

  it.effect("a declined payment left PENDING by a crash ends PAYMENT_FAILED and the key replays the decline", () =>
    Effect.gen(function* () {
      const orderId = yield* abandonedOrder({ applied: [0, 1], journaled: ["taken", "taken"], payment: "declined", key: "d" })
      yield* TestClock.adjust(Duration.seconds(31))
      expect((yield* (yield* Recovery).runOnce).outcomes.payment_failed).toBe(1)
      expect(yield* statusOf(orderId)).toEqual(Option.some(["PAYMENT_FAILED", ["returned", "returned"]]))
      const replay = yield* Effect.flip((yield* Checkout).placeOrder(request, Option.some("d")))
      expect(replay).toMatchObject({ _tag: "PaymentFailed", orderId, replayed: true })
    }).pipe(Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 10, [B]: 5 } }))))

  it.effect("two recovery passes never act on the same order: the claim is atomic", () =>
    Effect.gen(function* () {
      const repo = yield* OrderRepo
      const orderId = yield* abandonedOrder({ applied: [], journaled: [], payment: "none", key: "c" })
      yield* TestClock.adjust(Duration.seconds(31))
      const now = new Date(31_000)
      const until = new Date(61_000)
      const [first, second] = yield* Effect.all([repo.claim(orderId, "p1", now, until), repo.claim(orderId, "p2", now, until)], {
        concurrency: 2
      })
      expect([first, second].filter(Boolean)).toHaveLength(1)
      // the other process's recovery skips it while the lease holds
      expect(yield* (yield* Recovery).recoverOrder(orderId)).toBe("skipped")
    }).pipe(Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 10, [B]: 5 } }))))

  it.effect("a key left in flight by a process that died right after confirming its order replays the order", () =>
    Effect.gen(function* () {
      const repo = yield* OrderRepo
      const orderId = yield* abandonedOrder({ applied: [0, 1], journaled: ["taken", "taken"], payment: "succeeded", key: "late" })
      // the order was confirmed, then the process died before storing the key's response
      yield* repo.confirm(orderId, { type: "order.created", aggregateId: orderId, payload: {} }, new Date(1_000))
      const early = yield* Effect.exit((yield* Checkout).placeOrder(request, Option.some("late")))
      expect(early).toEqual(Exit.fail(expect.objectContaining({ _tag: "IdempotencyInProgress" })))
      yield* TestClock.adjust(Duration.seconds(31))
      const report = yield* (yield* Recovery).runOnce
      expect(report.keysSettled).toBe(1)
      const replay = yield* (yield* Checkout).placeOrder(request, Option.some("late"))
      expect(replay.replayed).toBe(true)
      expect(replay.order.orderId).toBe(orderId)
      expect(replay.order.status).toBe("CONFIRMED")
    }).pipe(Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 10, [B]: 5 } }))))

  it.effect("a key claimed by a process that died before creating its order is released after the lease", () =>
    Effect.gen(function* () {
      const keys = yield* IdempotencyStore
      yield* keys.claim({ userId: request.userId, key: "orphan", fingerprint: fingerprint(request) }, new Date(0))
      yield* TestClock.adjust(Duration.seconds(31))
      expect((yield* (yield* Recovery).runOnce).keysReleased).toBe(1)
      const placed = yield* (yield* Checkout).placeOrder(request, Option.some("orphan"))
      expect(placed.order.status).toBe("CONFIRMED")
    }).pipe(Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 10, [B]: 5 } }))))
})

describe("the recovery pass's key queries (every 5 s)", () => {
  it.effect("find in-flight keys through the in-flight index, not by reading every key (SQLite's query plan)", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const planOf = (text: string) =>
        Effect.map(sql.unsafe<{ detail: string }>(`EXPLAIN QUERY PLAN ${text}`, ["2026-01-01T00:00:00.000Z"]), (rows) => rows.map((r) => r.detail).join("; "))
      // the WHERE clauses of IdempotencyStore.releaseAbandoned and findStuck
      const abandoned = yield* planOf(`SELECT user_id FROM idempotency_keys WHERE state = 'in_progress' AND order_id IS NULL AND locked_at < ?`)
      const stuck = yield* planOf(
        `SELECT k.order_id FROM idempotency_keys k JOIN orders o ON o.id = k.order_id WHERE k.state = 'in_progress' AND o.status <> 'PENDING' AND k.locked_at < ?`
      )
      expect(abandoned).toContain("USING INDEX idempotency_keys_in_flight")
      expect(stuck).toContain("USING INDEX idempotency_keys_in_flight")
      expect(`${abandoned}; ${stuck}`).not.toMatch(/SCAN (k|idempotency_keys)\b/)
    }).pipe(Effect.provide(InMemoryDatabase)))
})
