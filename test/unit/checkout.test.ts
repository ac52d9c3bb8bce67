import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Context, Duration, Effect, Exit, Fiber, Layer, Option, Scope, TestClock } from "effect"
import { CreateOrderRequest } from "../../src/domain/Order.js"
import { Schema } from "effect"
import { AdjustOutcomeUnknown, InsufficientOnHand, InventoryUnavailable } from "../../src/services/InventoryClient.js"
import {
  Checkout,
  IdempotencyStore,
  InMemoryInventory,
  OrderRepo,
  InMemoryDatabaseLayer,
  ScriptedPayments,
  TestCircuitBreaker,
  testCheckoutLayer,
  TestRepositories
} from "../../src/testing.js"
import { makeCheckout } from "../../src/services/Checkout.js"
import { NoCrashPoints } from "../../src/services/CrashPoints.js"
import { testDatabases } from "../support/databases.js"
import { waitFor } from "../support/process.js"
import { fingerprint } from "../../src/domain/Fingerprint.js"
import { OrderId, UserId } from "../../src/domain/Ids.js"

const A = "11111111-1111-4111-8111-111111111111"
const B = "22222222-2222-4222-8222-222222222222"
const C = "33333333-3333-4333-8333-333333333333"
const MISSING = "99999999-9999-4999-8999-999999999999"

const decode = Schema.decodeUnknownSync(CreateOrderRequest)
const order = (items: ReadonlyArray<readonly [string, number, number | string]>, userId = "reader-1") =>
  decode({ userId, items: items.map(([bookId, qty, unitPrice]) => ({ bookId, qty, unitPrice })) })

const failureTag = <A, E extends { readonly _tag: string }>(exit: Exit.Exit<A, E>) =>
  Exit.match(exit, {
    onSuccess: () => "success",
    onFailure: (cause) => (cause._tag === "Fail" ? cause.error._tag : cause._tag)
  })

const countOrders = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM orders`.pipe(Effect.map((rows) => Number(rows[0]?.n ?? -1)), Effect.orDie)
)
const outboxRows = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ aggregate_id: string; type: string; payload: unknown }>`SELECT aggregate_id, type, payload FROM outbox_events`.pipe(
    Effect.orDie
  )
)

/** A pause of real time: lets database I/O complete while the `TestClock` stands still. */
const realPause = Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 20)))


describe.each(testDatabases)("Checkout saga [$name]", (db) => {
  it.effect("confirms a 2-line order: takes both stocks, charges the exact total, writes the outbox event", () =>
    Effect.gen(function* () {
      const checkout = yield* Checkout
      const inventory = yield* InMemoryInventory
      const payments = yield* ScriptedPayments
      const placed = yield* checkout.placeOrder(order([[A, 2, 16.99], [B, 3, "0.10"]]), Option.some("k1"))
      expect(placed.replayed).toBe(false)
      expect(placed.order.status).toBe("CONFIRMED")
      expect(placed.order.total).toBe(3428) // 2 x 16.99 + 3 x 0.10 = 34.28, exactly
      expect(placed.order.items.map((i) => i.lineTotal)).toEqual([3398, 30])
      expect(yield* inventory.stockOf(A)).toBe(8)
      expect(yield* inventory.stockOf(B)).toBe(2)
      expect(yield* payments.charges).toEqual([{ orderId: placed.order.orderId, amount: 3428 }])
      const events = yield* outboxRows
      expect(events).toHaveLength(1)
      expect(events[0]!.type).toBe("order.created")
      expect(events[0]!.aggregate_id).toBe(placed.order.orderId)
      const payload = events[0]!.payload // JSON text on SQLite, jsonb (parsed) on Postgres
      // the whole event data: the order in its JSON form with the buyer, without the status
      expect(typeof payload === "string" ? JSON.parse(payload) : payload).toStrictEqual({
        orderId: placed.order.orderId,
        userId: "reader-1",
        total: 34.28,
        currency: "USD",
        items: [
          { bookId: A, qty: 2, unitPrice: 16.99, lineTotal: 33.98 },
          { bookId: B, qty: 3, unitPrice: 0.1, lineTotal: 0.3 }
        ],
        createdAt: placed.order.createdAt.toISOString()
      })
      const stored = yield* checkout.getOrder(placed.order.orderId)
      expect(stored.status).toBe("CONFIRMED")
      expect(stored.total).toBe(3428)
      // the journal: both lines taken (written together), the payment succeeded
      const record = yield* (yield* OrderRepo).findRecord(placed.order.orderId)
      expect(Option.map(record, (r) => [r.paymentState, r.lineStates])).toEqual(Option.some(["succeeded", ["taken", "taken"]]))
    }).pipe(Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 10, [B]: 5 } }))))

  it.effect("the heartbeat keeps the lease of a saga in flight: recovery does not see its order until the saga ends", () =>
    Effect.gen(function* () {
      const checkout = yield* Checkout
      const repo = yield* OrderRepo
      const sql = yield* SqlClient.SqlClient
      const payments = yield* ScriptedPayments
      // the charge answers after 100 s: more than three leases of 30 s
      const saga = yield* Effect.fork(checkout.placeOrder(order([[A, 1, 2]]), Option.some("slow")))
      yield* Effect.promise(() =>
        waitFor(async () => ((await Effect.runPromise(payments.charges)).length === 1 ? true : undefined), 5_000, "the charge")
      )
      // in steps of 5 s, each let run (the database is real: its I/O takes real time)
      for (let step = 0; step < 19; step++) {
        yield* TestClock.adjust(Duration.seconds(5))
        yield* realPause
      }
      const [row] = yield* sql<{ id: string; status: string; lease_until: string }>`SELECT id, status, lease_until FROM orders`.pipe(
        Effect.orDie
      )
      expect(row?.status).toBe("PENDING")
      // extended at 90 s, to 90 s + one lease
      expect(row === undefined ? 0 : Date.parse(row.lease_until)).toBe(120_000)
      expect(yield* repo.findRecoverable(new Date(95_000), new Date(65_000), 10)).toEqual([])
      yield* TestClock.adjust(Duration.seconds(5))
      yield* realPause
      const placed = yield* Fiber.join(saga)
      expect(placed.order.status).toBe("CONFIRMED")
      expect(yield* (yield* InMemoryInventory).stockOf(A)).toBe(9)
    }).pipe(
      Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 10 }, payments: [{ approveAfter: Duration.seconds(100) }] }))
    ))

  it.live("a saga still running when shutdown's grace ends is interrupted and gives back every line it took", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        testCheckoutLayer({ database: db.layer(), stock: { [A]: 10, [B]: 10 }, payments: [{ approveAfter: Duration.hours(1) }] }),
        scope
      )
      const checkout = Context.get(context, Checkout)
      const inventory = Context.get(context, InMemoryInventory)
      const payments = Context.get(context, ScriptedPayments)
      const saga = yield* Effect.fork(checkout.placeOrder(order([[A, 2, 1], [B, 3, 1]]), Option.some("shutdown")))
      // both lines taken, the charge waiting for an hour
      yield* Effect.promise(() =>
        waitFor(async () => ((await Effect.runPromise(payments.charges)).length === 1 ? true : undefined), 5_000, "the charge")
      )
      expect([yield* inventory.stockOf(A), yield* inventory.stockOf(B)]).toEqual([8, 7])
      // shutdown waits 1 s (the layer's grace, real time here) for the saga, then interrupts it
      yield* Scope.close(scope, Exit.void)
      expect(Exit.isInterrupted(yield* Fiber.await(saga))).toBe(true)
      expect([yield* inventory.stockOf(A), yield* inventory.stockOf(B)]).toEqual([10, 10])
    }), 15_000)

  it.live("a saga whose caller cannot be interrupted is still interrupted at shutdown, and gives back what it took", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        testCheckoutLayer({ database: db.layer(), stock: { [A]: 10 }, payments: [{ approveAfter: Duration.hours(1) }] }),
        scope
      )
      const checkout = Context.get(context, Checkout)
      const inventory = Context.get(context, InMemoryInventory)
      const payments = Context.get(context, ScriptedPayments)
      // the HTTP platform runs its app uninterruptibly: a saga forked from there inherits that
      const caller = yield* Effect.fork(Effect.uninterruptible(checkout.placeOrder(order([[A, 4, 1]]), Option.some("uninterruptible-caller"))))
      yield* Effect.promise(() =>
        waitFor(async () => ((await Effect.runPromise(payments.charges)).length === 1 ? true : undefined), 5_000, "the charge")
      )
      expect(yield* inventory.stockOf(A)).toBe(6)
      yield* Scope.close(scope, Exit.void)
      const outcome = yield* Fiber.await(caller)
      expect(Exit.isFailure(outcome) && Cause.isInterrupted(outcome.cause)).toBe(true)
      expect(yield* inventory.stockOf(A)).toBe(10)
    }), 15_000)

  it.live("a saga interrupted at shutdown while a take is in flight waits for it, then gives back every line taken", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        testCheckoutLayer({ database: db.layer(), stock: { [A]: 10, [B]: 10 } }),
        scope
      )
      const checkout = Context.get(context, Checkout)
      const inventory = Context.get(context, InMemoryInventory)
      // B's take lands 2 s after it is sent, after the shutdown's 1 s grace has run out
      yield* inventory.slowNextAdjust(B, Duration.seconds(2))
      const saga = yield* Effect.fork(checkout.placeOrder(order([[A, 2, 1], [B, 3, 1]]), Option.some("slow-take")))
      yield* Effect.promise(() =>
        waitFor(async () => ((await Effect.runPromise(inventory.stockOf(A))) === 8 ? true : undefined), 5_000, "A's take")
      )
      expect(yield* inventory.stockOf(B)).toBe(10)
      yield* Scope.close(scope, Exit.void)
      expect(Exit.isInterrupted(yield* Fiber.await(saga))).toBe(true)
      // B's take was not cut short: it landed, and was given back with A's
      expect([yield* inventory.stockOf(A), yield* inventory.stockOf(B)]).toEqual([10, 10])
      const notes = (yield* inventory.transactions).map((t) => `${t.bookId === A ? "A" : "B"} ${t.quantityChange}`)
      expect(notes).toEqual(["A -2", "B -3", "B 3", "A 2"])
    }), 15_000)

  it.live("when several takes fail, the first line's failure is the saga's, whichever answered first", () =>
    Effect.gen(function* () {
      const checkout = yield* Checkout
      const inventory = yield* InMemoryInventory
      // A's take fails after 300 ms (an outage), B's at once (sold out meanwhile), C's is applied
      yield* inventory.slowNextAdjust(A, Duration.millis(300))
      yield* inventory.failNextAdjust(A, new InventoryUnavailable({ reason: "503 after retries" }))
      yield* inventory.failNextAdjust(B, new InsufficientOnHand({ bookId: B, detail: "would result in negative inventory" }), { stockAfter: 0 })
      const exit = yield* Effect.exit(checkout.placeOrder(order([[A, 1, 1], [B, 1, 1], [C, 1, 1]]), Option.none()))
      expect(failureTag(exit)).toBe("UpstreamUnavailable")
      expect([yield* inventory.stockOf(A), yield* inventory.stockOf(B), yield* inventory.stockOf(C)]).toEqual([10, 0, 10])
      const notes = (yield* inventory.transactions).map((t) => `${t.bookId === C ? "C" : t.bookId} ${t.quantityChange}`)
      expect(notes).toEqual(["C -1", "C 1"])
    }).pipe(Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 10, [B]: 10, [C]: 10 } }))))

  it.live("a line that fails while another line's take is in flight: the saga waits for that take, then gives it back", () =>
    Effect.gen(function* () {
      const checkout = yield* Checkout
      const inventory = yield* InMemoryInventory
      // A is refused at once; B's take lands 300 ms after it is sent
      yield* inventory.failNextAdjust(A, new InsufficientOnHand({ bookId: A, detail: "would result in negative inventory" }), { stockAfter: 1 })
      yield* inventory.slowNextAdjust(B, Duration.millis(300))
      const exit = yield* Effect.exit(checkout.placeOrder(order([[A, 2, 1], [B, 3, 1]]), Option.none()))
      expect(exit).toEqual(Exit.fail(expect.objectContaining({ _tag: "InsufficientStock", details: [{ bookId: A, available: 1, requested: 2 }] })))
      expect([yield* inventory.stockOf(A), yield* inventory.stockOf(B)]).toEqual([1, 10])
      const notes = (yield* inventory.transactions).map((t) => `${t.bookId === A ? "A" : "B"} ${t.quantityChange}`)
      expect(notes).toEqual(["B -3", "B 3"])
      const orders = yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ status: string }>`SELECT status FROM orders`.pipe(Effect.orDie))
      expect(orders).toEqual([{ status: "CANCELLED" }])
    }).pipe(Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 10, [B]: 10 } }))))

  it.live("an order of no lines, from a caller that skipped validation, ends at once instead of waiting for lines", () =>
    Effect.gen(function* () {
      const checkout = yield* Checkout
      const inventory = yield* InMemoryInventory
      const empty = CreateOrderRequest.make({ userId: UserId.make("reader-1"), items: [] }, true)
      // nothing to wait for: the saga goes on past the pre-check (and fails at the database, which
      // holds no order without a line), instead of hanging until shutdown with its key claimed
      const exit = yield* Effect.exit(Effect.timeoutFail(checkout.placeOrder(empty, Option.some("no-lines")), {
        duration: Duration.seconds(2),
        onTimeout: () => "still waiting after 2 s"
      }))
      expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
      expect(yield* inventory.calls).toEqual([])
    }).pipe(Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 10 } }))))

  it.effect("adds 3 x 0.10 to exactly 0.30", () =>
    Effect.gen(function* () {
      const placed = yield* (yield* Checkout).placeOrder(order([[A, 3, 0.1]]), Option.none())
      expect(placed.order.total).toBe(30)
    }).pipe(Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 10 } }))))

  it.effect("pre-check: every short line is reported with what is on hand, nothing is written or taken", () =>
    Effect.gen(function* () {
      const checkout = yield* Checkout
      const inventory = yield* InMemoryInventory
      const exit = yield* Effect.exit(checkout.placeOrder(order([[A, 5, 1], [B, 1, 1], [C, 9, 1]]), Option.some("k")))
      expect(exit).toEqual(Exit.fail(expect.objectContaining({
        _tag: "InsufficientStock",
        details: [
          { bookId: A, available: 2, requested: 5 },
          { bookId: C, available: 0, requested: 9 }
        ]
      })))
      expect(yield* countOrders).toBe(0)
      expect((yield* inventory.calls).filter((c) => c.op === "adjust")).toEqual([])
      // the key was released: once restocked, the same key places the order
      yield* inventory.setStock(A, 5)
      yield* inventory.setStock(C, 9)
      const placed = yield* checkout.placeOrder(order([[A, 5, 1], [B, 1, 1], [C, 9, 1]]), Option.some("k"))
      expect(placed.order.status).toBe("CONFIRMED")
    }).pipe(Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 2, [B]: 1, [C]: 0 } }))))

  it.effect("pre-check: a book the inventory does not know is unknown_book, no order row", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit((yield* Checkout).placeOrder(order([[A, 1, 1], [MISSING, 1, 1]]), Option.none()))
      expect(exit).toEqual(Exit.fail(expect.objectContaining({ _tag: "UnknownBook", bookIds: [MISSING] })))
      expect(yield* countOrders).toBe(0)
    }).pipe(Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 2 } }))))

  it.effect("payment declined: every taken line is given back, PAYMENT_FAILED, and the key replays the decline", () =>
    Effect.gen(function* () {
      const checkout = yield* Checkout
      const inventory = yield* InMemoryInventory
      const repo = yield* OrderRepo
      const request = order([[A, 2, 5], [B, 1, 7.5]])
      const exit = yield* Effect.exit(checkout.placeOrder(request, Option.some("pay")))
      expect(failureTag(exit)).toBe("PaymentFailed")
      expect(yield* inventory.stockOf(A)).toBe(10)
      expect(yield* inventory.stockOf(B)).toBe(5)
      const orderId = Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag === "PaymentFailed"
        ? exit.cause.error.orderId
        : ""
      const record = yield* repo.findRecord(OrderId.make(orderId))
      expect(Option.map(record, (r) => [r.order.status, r.paymentState, r.lineStates])).toEqual(
        Option.some(["PAYMENT_FAILED", "declined", ["returned", "returned"]])
      )
      const callsBefore = (yield* inventory.calls).length
      const replay = yield* Effect.exit(checkout.placeOrder(request, Option.some("pay")))
      expect(replay).toEqual(Exit.fail(expect.objectContaining({ _tag: "PaymentFailed", orderId, replayed: true })))
      expect((yield* inventory.calls).length).toBe(callsBefore)
    }).pipe(Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 10, [B]: 5 }, payments: ["decline"] }))))

  it.effect("a take refused part-way gives back only the taken lines, in reverse order; CANCELLED; key released", () =>
    Effect.gen(function* () {
      const checkout = yield* Checkout
      const inventory = yield* InMemoryInventory
      // the third book sells out between the pre-check and the take (a lost race)
      yield* inventory.failNextAdjust(C, new InsufficientOnHand({ bookId: C, detail: "would result in negative inventory" }), {
        stockAfter: 1
      })
      const exit = yield* Effect.exit(checkout.placeOrder(order([[A, 1, 1], [B, 2, 1], [C, 3, 1]]), Option.some("race")))
      expect(exit).toEqual(Exit.fail(expect.objectContaining({ _tag: "InsufficientStock" })))
      expect(exit).toEqual(Exit.fail(expect.objectContaining({ details: [{ bookId: C, available: 1, requested: 3 }] })))
      expect([yield* inventory.stockOf(A), yield* inventory.stockOf(B), yield* inventory.stockOf(C)]).toEqual([5, 5, 1])
      const adjusts = (yield* inventory.calls).flatMap((c) => (c.op === "adjust" ? [[c.note.split(":")[0], c.bookId, c.change]] : []))
      // the three takes go out together; only the two that were applied are given back, once each
      expect(adjusts.slice(0, 3)).toEqual([
        ["order", A, -1],
        ["order", B, -2],
        ["order", C, -3]
      ])
      expect(adjusts.slice(3)).toHaveLength(2)
      expect(adjusts.slice(3)).toEqual(expect.arrayContaining([["compensate", B, 2], ["compensate", A, 1]]))
      const orders = yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ status: string }>`SELECT status FROM orders`.pipe(Effect.orDie))
      expect(orders).toEqual([{ status: "CANCELLED" }])
      yield* inventory.setStock(C, 5) // restocked
      const again = yield* checkout.placeOrder(order([[A, 1, 1], [B, 2, 1], [C, 3, 1]]), Option.some("race"))
      expect(again.order.status).toBe("CONFIRMED")
    }).pipe(Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 5, [B]: 5, [C]: 5 } }))))

  it.effect("a take the inventory refuses although stock would cover it is its failure (502), not insufficient_stock", () =>
    Effect.gen(function* () {
      const checkout = yield* Checkout
      const inventory = yield* InMemoryInventory
      yield* inventory.failNextAdjust(B, new InsufficientOnHand({ bookId: B, detail: "refused" }))
      const exit = yield* Effect.exit(checkout.placeOrder(order([[A, 1, 1], [B, 1, 1]]), Option.none()))
      expect(failureTag(exit)).toBe("UpstreamUnavailable")
      expect([yield* inventory.stockOf(A), yield* inventory.stockOf(B)]).toEqual([3, 3])
    }).pipe(Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 3, [B]: 3 } }))))

  it.effect("an inventory outage on a take compensates, CANCELLED, upstream_unavailable", () =>
    Effect.gen(function* () {
      const checkout = yield* Checkout
      const inventory = yield* InMemoryInventory
      yield* inventory.failNextAdjust(B, new InventoryUnavailable({ reason: "503 after retries" }))
      const exit = yield* Effect.exit(checkout.placeOrder(order([[A, 1, 1], [B, 1, 1]]), Option.none()))
      expect(failureTag(exit)).toBe("UpstreamUnavailable")
      expect([yield* inventory.stockOf(A), yield* inventory.stockOf(B)]).toEqual([3, 3])
    }).pipe(Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 3, [B]: 3 } }))))

  it.effect("an adjust whose outcome stays unknown leaves the order PENDING and the line journaled unknown", () =>
    Effect.gen(function* () {
      const checkout = yield* Checkout
      const inventory = yield* InMemoryInventory
      yield* inventory.failNextAdjust(A, new AdjustOutcomeUnknown({ bookId: A, note: "n", reason: "reset" }), { applied: true })
      const exit = yield* Effect.exit(checkout.placeOrder(order([[A, 1, 1]]), Option.some("unk")))
      expect(failureTag(exit)).toBe("UpstreamUnavailable")
      const rows = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<{ status: string; stock_state: string }>`SELECT o.status, i.stock_state FROM orders o JOIN order_items i ON i.order_id = o.id`.pipe(Effect.orDie)
      )
      expect(rows).toEqual([{ status: "PENDING", stock_state: "unknown" }])
      // the key stays in flight until recovery settles the order
      const retry = yield* Effect.exit(checkout.placeOrder(order([[A, 1, 1]]), Option.some("unk")))
      expect(failureTag(retry)).toBe("IdempotencyInProgress")
      // the saga has ended, so the heartbeat no longer extends the order's lease: once the lease of
      // 30 s has passed (and the heartbeat has beaten twice), recovery sees the order
      for (let step = 0; step < 8; step++) {
        yield* TestClock.adjust(Duration.seconds(5))
        yield* realPause
      }
      const [pending] = yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ id: string }>`SELECT id FROM orders`.pipe(Effect.orDie))
      const repo = yield* OrderRepo
      expect(yield* repo.findRecoverable(new Date(40_000), new Date(40_000), 10)).toEqual([pending?.id])
    }).pipe(Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 3 } }))))

  it.effect("a give-back that fails is journaled return_failed and the order is not finished", () =>
    Effect.gen(function* () {
      const checkout = yield* Checkout
      const inventory = yield* InMemoryInventory
      yield* inventory.failNextAdjust(B, new InventoryUnavailable({ reason: "down" }))
      // line A is taken; the take of B fails; the give-back of A then fails too
      yield* inventory.failNextAdjust(A, new InventoryUnavailable({ reason: "still down" }), { notePrefix: "compensate:" })
      const exit = yield* Effect.exit(checkout.placeOrder(order([[A, 1, 1], [B, 1, 1]]), Option.none()))
      expect(failureTag(exit)).toBe("UpstreamUnavailable")
      const rows = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<{ status: string }>`SELECT status FROM orders`.pipe(Effect.orDie)
      )
      expect(rows).toEqual([{ status: "PENDING" }])
      const states = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<{ stock_state: string }>`SELECT stock_state FROM order_items ORDER BY line_no`.pipe(Effect.orDie)
      )
      expect(states.map((r) => r.stock_state)).toEqual(["return_failed", "pending"])
      expect(yield* inventory.stockOf(A)).toBe(2) // still held: recovery must give it back
    }).pipe(Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 3, [B]: 3 } }))))
})

describe.each(testDatabases)("Checkout idempotency [$name]", (db) => {
  it.effect("same key, same request: the stored order again, with no inventory call", () =>
    Effect.gen(function* () {
      const checkout = yield* Checkout
      const inventory = yield* InMemoryInventory
      const first = yield* checkout.placeOrder(order([[A, 1, 16.99]]), Option.some("same"))
      const callsAfterFirst = (yield* inventory.calls).length
      // same request, spelled differently: 16.990 and "16.99" are the same price
      const again = yield* checkout.placeOrder(order([[A, 1, "16.990"]]), Option.some("same"))
      expect(again.replayed).toBe(true)
      expect(again.order).toEqual(first.order)
      expect((yield* inventory.calls).length).toBe(callsAfterFirst)
      expect(yield* inventory.stockOf(A)).toBe(4)
    }).pipe(Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 5 } }))))

  it.effect("same key, different request: idempotency_conflict, nothing taken", () =>
    Effect.gen(function* () {
      const checkout = yield* Checkout
      const inventory = yield* InMemoryInventory
      yield* checkout.placeOrder(order([[A, 1, 1]]), Option.some("k"))
      const exit = yield* Effect.exit(checkout.placeOrder(order([[A, 2, 1]]), Option.some("k")))
      expect(failureTag(exit)).toBe("IdempotencyConflict")
      expect(yield* inventory.stockOf(A)).toBe(4)
    }).pipe(Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 5 } }))))

  it.effect("a key is scoped to its user: another user's same key is a new order", () =>
    Effect.gen(function* () {
      const checkout = yield* Checkout
      const a = yield* checkout.placeOrder(order([[A, 1, 1]], "alice"), Option.some("k"))
      const b = yield* checkout.placeOrder(order([[A, 1, 1]], "bob"), Option.some("k"))
      expect(a.order.orderId).not.toBe(b.order.orderId)
      expect(b.replayed).toBe(false)
    }).pipe(Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 5 } }))))

  it.effect("same key while the first request is in flight: idempotency_in_progress", () =>
    Effect.gen(function* () {
      const checkout = yield* Checkout
      const keys = yield* IdempotencyStore
      const request = order([[A, 1, 1]])
      // another replica holds the key
      yield* keys.claim({ userId: "reader-1", key: "busy", fingerprint: fingerprint(request) }, new Date())
      const exit = yield* Effect.exit(checkout.placeOrder(request, Option.some("busy")))
      expect(exit).toEqual(Exit.fail(expect.objectContaining({ _tag: "IdempotencyInProgress", retryAfterSeconds: 1 })))
    }).pipe(Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 5 } }))))

  it.effect("without a key, two equal requests are two orders", () =>
    Effect.gen(function* () {
      const checkout = yield* Checkout
      const a = yield* checkout.placeOrder(order([[A, 1, 1]]), Option.none())
      const b = yield* checkout.placeOrder(order([[A, 1, 1]]), Option.none())
      expect(a.order.orderId).not.toBe(b.order.orderId)
      expect(yield* (yield* InMemoryInventory).stockOf(A)).toBe(3)
    }).pipe(Effect.provide(testCheckoutLayer({ database: db.layer(), stock: { [A]: 5 } }))))
})

describe("Checkout saga: a confirm that fails", () => {
  /** The saga on an order repository whose first `failures` confirms die (the database refusing the commit). */
  const withFailingConfirms = (failures: number) => {
    let confirms = 0
    const FailingConfirms = Layer.effect(
      OrderRepo,
      Effect.map(OrderRepo, (repo) =>
        OrderRepo.of({
          ...repo,
          confirm: (...args) =>
            Effect.suspend(() => (++confirms <= failures ? Effect.die(new Error("the database refused the commit")) : repo.confirm(...args)))
        })
      )
    )
    const layer = Layer.scoped(Checkout, makeCheckout({ shutdownGrace: Duration.seconds(1), lease: Duration.seconds(30) })).pipe(
      Layer.provide(FailingConfirms),
      Layer.provideMerge(
        Layer.mergeAll(InMemoryInventory.layer({ [A]: 10 }), ScriptedPayments.layer([]), TestRepositories, TestCircuitBreaker, NoCrashPoints)
      ),
      Layer.provideMerge(InMemoryDatabaseLayer)
    )
    return { layer, confirms: () => confirms }
  }

  it.live("is tried again after 50 ms, then 100 ms: the third try confirms the order, stock taken once", () => {
    const { confirms, layer } = withFailingConfirms(2)
    return Effect.gen(function* () {
      const started = Date.now()
      const placed = yield* (yield* Checkout).placeOrder(order([[A, 2, 5]]), Option.some("retry-1"))
      expect(placed.order.status).toBe("CONFIRMED")
      expect(confirms()).toBe(3)
      expect(Date.now() - started).toBeGreaterThanOrEqual(140)
      expect(yield* (yield* InMemoryInventory).stockOf(A)).toBe(8)
      expect((yield* (yield* Checkout).getOrder(placed.order.orderId)).status).toBe("CONFIRMED")
    }).pipe(Effect.provide(layer))
  })

  it.live("six failed tries (the first and 5 retries) fail the saga; the order stays PENDING for recovery", () => {
    const { confirms, layer } = withFailingConfirms(100)
    return Effect.gen(function* () {
      const exit = yield* Effect.exit((yield* Checkout).placeOrder(order([[A, 1, 5]]), Option.some("retry-2")))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(confirms()).toBe(6)
      const [row] = yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ status: string }>`SELECT status FROM orders`)
      expect(row?.status).toBe("PENDING")
    }).pipe(Effect.provide(layer))
  })
})
