import { SqlClient, type Statement } from "@effect/sql"
import { Context, Effect, Layer, Option, Schema } from "effect"
import { DbInt } from "./SqlColumns.js"
import { BookId, OrderId, UserId } from "../domain/Ids.js"
import { Cents, Currency } from "../domain/Money.js"
import { Order, OrderItem, OrderStatus, PaymentState, StockState } from "../domain/Order.js"
import { IdempotencyStore, type KeyScope } from "./IdempotencyStore.js"
import { Outbox, type OutboxEvent } from "./Outbox.js"
import { makeSqlRunner, type SqlSteps } from "./SqlSteps.js"
import { tracedWhereBuilt } from "./Tracing.js"

/** An order about to be stored: PENDING, with its priced lines. */
export interface NewOrder {
  readonly orderId: OrderId
  readonly userId: UserId
  readonly idempotencyKey: string | null
  readonly items: ReadonlyArray<OrderItem>
  readonly total: Cents
  readonly createdAt: Date
  /** Until when the saga that creates it owns it; recovery leaves it alone until then. */
  readonly leaseUntil: Date
}

/** An order with its saga journal: each line's stock state and the payment outcome. */
export interface OrderRecord {
  readonly order: Order
  readonly userId: UserId
  readonly idempotencyKey: string | null
  readonly paymentState: PaymentState
  readonly lineStates: ReadonlyArray<StockState>
  readonly updatedAt: Date
  /** How often recovery has had to put it off. */
  readonly recoveryAttempts: number
}

/**
 * Orders and their saga journal. Database failures are defects here (the repository edge);
 * callers see only what the order is.
 */
export interface OrderRepoService {
  /**
   * Stores a PENDING order and its lines (all `pending`) in one transaction; with `key`, also
   * records on that in-flight idempotency key that this order is its request's (in the same
   * transaction, so no order exists that its key does not know of).
   */
  readonly insertPending: (order: NewOrder, key?: KeyScope) => Effect.Effect<void>
  /** Journals the stock state of lines `lineNos` (0-based), all in one statement; none: no write. */
  readonly setLineStates: (orderId: OrderId, lineNos: ReadonlyArray<number>, state: StockState) => Effect.Effect<void>
  /** Journals the payment outcome (and the gateway's reference when it succeeded). */
  readonly setPayment: (orderId: OrderId, state: PaymentState, reference: string | null) => Effect.Effect<void>
  /**
   * Moves a PENDING order to CANCELLED or PAYMENT_FAILED; false when it was not PENDING
   * (the state machine allows no other transition).
   */
  readonly finish: (
    orderId: OrderId,
    status: "CANCELLED" | "PAYMENT_FAILED",
    reason: string,
    now: Date
  ) => Effect.Effect<boolean>
  /**
   * Marks a PENDING order CONFIRMED and appends `event` to the outbox in the same transaction;
   * with `answer`, also stores the response its idempotency key replays (`IdempotencyStore.complete`),
   * again in the same transaction. False (and nothing written) when it was not PENDING.
   */
  readonly confirm: (orderId: OrderId, event: OutboxEvent, now: Date, answer?: KeyAnswer) => Effect.Effect<boolean>
  /** The order as the API shows it. */
  readonly findById: (orderId: OrderId) => Effect.Effect<Option.Option<Order>>
  /** The order with its journal. */
  readonly findRecord: (orderId: OrderId) => Effect.Effect<Option.Option<OrderRecord>>
  /**
   * Up to `limit` PENDING orders that recovery should take (oldest first): no lease in force at
   * `now`, and either recovery's backoff has run out or (never deferred) no journal write since
   * `staleBefore`.
   */
  readonly findRecoverable: (now: Date, staleBefore: Date, limit: number) => Effect.Effect<ReadonlyArray<OrderId>>
  /**
   * Claims a PENDING order for `owner` until `until` with one atomic update; false when another
   * process holds it or it is no longer PENDING.
   */
  readonly claim: (orderId: OrderId, owner: string, now: Date, until: Date) => Effect.Effect<boolean>
  /** Extends the running sagas' hold on their PENDING orders to `until` (the sagas' heartbeat). */
  readonly extendLeases: (orderIds: ReadonlyArray<OrderId>, until: Date) => Effect.Effect<void>
  /** Gives up a claim and asks recovery to try again at `nextAt` (counts an attempt). */
  readonly deferRecovery: (orderId: OrderId, nextAt: Date) => Effect.Effect<number>
}

/** The response an idempotency key is to replay: HTTP status and JSON body. */
export interface KeyAnswer {
  readonly scope: KeyScope
  readonly status: number
  readonly body: unknown
}

/** Orders and the saga journal (tables `orders`, `order_items`). */
export class OrderRepo extends Context.Tag("bookverse/OrderRepo")<OrderRepo, OrderRepoService>() {}

const chunksOf = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const chunks: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size))
  return chunks
}

const OrderRow = Schema.Struct({
  id: OrderId,
  user_id: UserId,
  idempotency_key: Schema.NullOr(Schema.String),
  status: OrderStatus,
  total_cents: DbInt,
  payment_state: PaymentState,
  created_at: Schema.String,
  updated_at: Schema.String,
  recovery_attempts: DbInt
})

const ItemRow = Schema.Struct({
  line_no: DbInt,
  book_id: BookId,
  qty: DbInt,
  unit_price_cents: DbInt,
  line_total_cents: DbInt,
  stock_state: StockState
})

const decodeOrderRow = Schema.decodeUnknownSync(OrderRow)
const decodeItemRows = Schema.decodeUnknownSync(Schema.Array(ItemRow))

/**
 * The order repository on the `SqlClient` in context; confirming writes through `Outbox`, and the
 * key's part of `insertPending` and `confirm` through `IdempotencyStore` (same client, same transaction).
 */
export const OrderRepoLive = Layer.effect(
  OrderRepo,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const outbox = yield* Outbox
    const traced = yield* tracedWhereBuilt
    const keys = yield* IdempotencyStore

    const runner = yield* makeSqlRunner
    // the clock of the fiber that builds the repository (`TestClock` in tests)
    const clock = yield* Effect.clock

    /** The order and its lines, as rows (none when there is no such order). */
    function* findRows(orderId: OrderId): SqlSteps<Option.Option<readonly [typeof OrderRow.Type, ReadonlyArray<typeof ItemRow.Type>]>> {
      const orderRows = yield sql`SELECT id, user_id, idempotency_key, status, total_cents, payment_state, created_at, updated_at, recovery_attempts FROM orders WHERE id = ${orderId}`
      if (orderRows.length === 0) return Option.none()
      const itemRows = yield sql`SELECT line_no, book_id, qty, unit_price_cents, line_total_cents, stock_state FROM order_items WHERE order_id = ${orderId} ORDER BY line_no`
      return Option.some([decodeOrderRow(orderRows[0]), decodeItemRows(itemRows)] as const)
    }

    const findRecord = (orderId: OrderId) =>
      runner.run(() => findRows(orderId)).pipe(
        Effect.map(Option.map(([o, items]): OrderRecord => {
          // the rows were decoded by OrderRow and ItemRow, and every amount by Cents: not validated again
          const order = Order.make({
            orderId: o.id,
            status: o.status,
            total: Cents.make(o.total_cents),
            currency: Currency,
            createdAt: new Date(o.created_at),
            items: items.map((i) =>
              OrderItem.make({
                bookId: i.book_id,
                qty: i.qty,
                unitPrice: Cents.make(i.unit_price_cents),
                lineTotal: Cents.make(i.line_total_cents)
              }, true)
            )
          }, true)
          return {
            order,
            userId: o.user_id,
            idempotencyKey: o.idempotency_key,
            paymentState: o.payment_state,
            lineStates: items.map((i) => i.stock_state),
            updatedAt: new Date(o.updated_at),
            recoveryAttempts: o.recovery_attempts
          }
        })),
        traced("OrderRepo.findRecord")
      )

    function* insertPendingSteps(order: NewOrder, key: KeyScope | undefined): SqlSteps<void> {
      const at = order.createdAt.toISOString()
      yield sql`
        INSERT INTO orders (id, user_id, idempotency_key, status, total_cents, currency, payment_state, created_at, updated_at, lease_until)
        VALUES (${order.orderId}, ${order.userId}, ${order.idempotencyKey}, 'PENDING', ${order.total}, ${Currency}, 'none', ${at}, ${at}, ${order.leaseUntil.toISOString()})`
      yield sql`INSERT INTO order_items ${sql.insert(
        order.items.map((item, lineNo) => ({
          order_id: order.orderId,
          line_no: lineNo,
          book_id: item.bookId,
          qty: item.qty,
          unit_price_cents: item.unitPrice,
          line_total_cents: item.lineTotal,
          stock_state: "pending",
          updated_at: at
        }))
      )}`
      if (key !== undefined) yield* keys.attachOrderSteps(key, order.orderId)
    }

    function* confirmSteps(orderId: OrderId, event: OutboxEvent, now: Date, answer: KeyAnswer | undefined): SqlSteps<boolean> {
      const rows = yield sql`UPDATE orders SET status = 'CONFIRMED', updated_at = ${now.toISOString()}
        WHERE id = ${orderId} AND status = 'PENDING' RETURNING id`
      if (rows.length !== 1) return false
      yield* outbox.appendSteps(event, now)
      if (answer !== undefined) yield* keys.completeSteps(answer.scope, answer.status, answer.body, now)
      return true
    }

    /** One statement, at `Clock` time as ISO text (read as the statement runs, in the run's own step). */
    const stamped = (statement: (at: string) => Statement.Statement<unknown>): Effect.Effect<void> =>
      runner.run(function* (): SqlSteps<void> {
        yield statement(new Date(clock.unsafeCurrentTimeMillis()).toISOString())
      })

    return OrderRepo.of({
      insertPending: (order, key) =>
        runner.run(() => insertPendingSteps(order, key), { transaction: true }).pipe(traced("OrderRepo.insertPending")),

      setLineStates: (orderId, lineNos, state) =>
        lineNos.length === 0 ? Effect.void : stamped((at) =>
          sql`UPDATE order_items SET stock_state = ${state}, updated_at = ${at}
              WHERE order_id = ${orderId} AND ${sql.in("line_no", lineNos)}`
        ),

      setPayment: (orderId, state, reference) =>
        stamped((at) => sql`UPDATE orders SET payment_state = ${state}, payment_reference = ${reference}, updated_at = ${at}
                            WHERE id = ${orderId}`),

      finish: (orderId, status, reason, now) =>
        runner.run(function* (): SqlSteps<boolean> {
          const rows = yield sql`UPDATE orders SET status = ${status}, failure_reason = ${reason}, updated_at = ${now.toISOString()}
              WHERE id = ${orderId} AND status = 'PENDING' RETURNING id`
          return rows.length === 1
        }),

      confirm: (orderId, event, now, answer) =>
        runner.run(() => confirmSteps(orderId, event, now, answer), { transaction: true }).pipe(traced("OrderRepo.confirm")),

      findById: (orderId) => Effect.map(findRecord(orderId), Option.map((r) => r.order)),
      findRecord,

      findRecoverable: (now, staleBefore, limit) => {
        const at = now.toISOString()
        const stale = staleBefore.toISOString()
        return sql<{ id: string }>`
          SELECT o.id FROM orders o
          WHERE o.status = 'PENDING'
            AND (o.lease_until IS NULL OR o.lease_until < ${at})
            AND (
              -- recovery already had it: its backoff decides
              (o.next_recovery_at IS NOT NULL AND o.next_recovery_at <= ${at})
              -- otherwise: its saga has written nothing to the journal for a whole lease
              OR (o.next_recovery_at IS NULL AND o.updated_at < ${stale}
                  AND NOT EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id AND i.updated_at >= ${stale})))
          ORDER BY o.created_at
          LIMIT ${limit}`.pipe(
          Effect.flatMap(Schema.decodeUnknown(Schema.Array(Schema.Struct({ id: OrderId })))),
          Effect.map((rows) => rows.map((r) => r.id)),
          Effect.orDie
        )
      },

      claim: (orderId, owner, now, until) =>
        sql<{ id: string }>`
          UPDATE orders SET lease_owner = ${owner}, lease_until = ${until.toISOString()}
          WHERE id = ${orderId} AND status = 'PENDING' AND (lease_until IS NULL OR lease_until < ${now.toISOString()})
          RETURNING id`.pipe(
          Effect.map((rows) => rows.length === 1),
          Effect.orDie
        ),

      extendLeases: (orderIds, until) =>
        Effect.forEach(
          chunksOf(orderIds, 500),
          (ids) =>
            sql`UPDATE orders SET lease_until = ${until.toISOString()} WHERE status = 'PENDING' AND ${sql.in("id", ids)}`,
          { discard: true }
        ).pipe(Effect.orDie),

      deferRecovery: (orderId, nextAt) =>
        sql<{ recovery_attempts: number | string }>`
          UPDATE orders SET recovery_attempts = recovery_attempts + 1, next_recovery_at = ${nextAt.toISOString()},
                 lease_owner = NULL, lease_until = NULL
          WHERE id = ${orderId}
          RETURNING recovery_attempts`.pipe(
          Effect.map((rows) => Number(rows[0]?.recovery_attempts ?? 0)),
          Effect.orDie
        )
    })
  })
)
