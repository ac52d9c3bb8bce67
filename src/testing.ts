/**
 * Test Layers for developers who compose checkout's services in their own tests:
 * an in-memory inventory (seedable, inspectable, scriptable failures), a scripted payment
 * gateway, an in-memory migrated SQLite database, and the saga wired on top of them.
 *
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Checkout, InMemoryInventory, ScriptedPayments, testCheckoutLayer } from "bookverse-checkout/testing"
 * const layer = testCheckoutLayer({ stock: { [bookId]: 5 }, payments: ["approve"] })
 * ```
 */
import type { SqlClient } from "@effect/sql"
import { Context, Duration, Effect, Layer, Option, Ref } from "effect"
import { randomUUID } from "node:crypto"
import type { BookId } from "./domain/Ids.js"
import { InMemoryDatabase } from "./layers/Database.js"
import { Checkout, makeCheckout } from "./services/Checkout.js"
import { CircuitBreaker, makeCircuitBreaker } from "./services/CircuitBreaker.js"
import { NoCrashPoints } from "./services/CrashPoints.js"
import { makeRecovery, Recovery } from "./services/Recovery.js"
import { HealthProbeLive } from "./services/Health.js"
import { IdempotencyStore, makeIdempotencyStore } from "./services/IdempotencyStore.js"
import {
  type AdjustError,
  InsufficientOnHand,
  InventoryBookNotFound,
  InventoryClient,
  InventoryHealth,
  type InventoryTransaction,
  type ReadError
} from "./services/InventoryClient.js"
import { OrderRepo, OrderRepoLive } from "./services/OrderRepo.js"
import { Outbox, OutboxLive } from "./services/Outbox.js"
import { PaymentDeclined, PaymentGateway, type PaymentReceipt } from "./services/PaymentGateway.js"

export { Checkout, CircuitBreaker, IdempotencyStore, InventoryClient, OrderRepo, Outbox, PaymentGateway, Recovery }

// ---------------------------------------------------------------------------------------------
// In-memory inventory
// ---------------------------------------------------------------------------------------------

/** One call the in-memory inventory received, in order. */
export type InventoryCall =
  | { readonly op: "getStock"; readonly bookId: string }
  | { readonly op: "adjust"; readonly bookId: string; readonly change: number; readonly note: string }


/**
 * What a test sees of the in-memory inventory: stock on hand, the calls made, the transactions
 * applied, and a way to script failures.
 */
export interface InMemoryInventoryControl {
  /** Copies available of `bookId`, or undefined when it has no record. */
  readonly stockOf: (bookId: string) => Effect.Effect<number | undefined>
  /** Sets a book's copies available (creates the record). */
  readonly setStock: (bookId: string, quantity: number) => Effect.Effect<void>
  /** Every call so far, oldest first. */
  readonly calls: Effect.Effect<ReadonlyArray<InventoryCall>>
  /** Every applied adjust, oldest first. */
  readonly transactions: Effect.Effect<ReadonlyArray<InventoryTransaction>>
  /**
   * The next adjust of `bookId` fails with `failure`. With `applied: true` the adjust is applied
   * first, then fails: an unknown outcome as the real service can produce. With `notePrefix`
   * only an adjust whose note starts with it fails (`"compensate:"` for a give-back). With
   * `stockAfter` the book's stock is set to it as the failure happens (another buyer took copies).
   */
  readonly failNextAdjust: (
    bookId: string,
    failure: AdjustError,
    options?: { readonly applied?: boolean; readonly notePrefix?: string; readonly stockAfter?: number }
  ) => Effect.Effect<void>
  /**
   * The next adjust of `bookId` is applied only after `delay` (by Effect's `Clock`): a slow
   * inventory, e.g. to catch a saga with a take in flight.
   */
  readonly slowNextAdjust: (bookId: string, delay: Duration.DurationInput) => Effect.Effect<void>
  /** The next `getStock` of `bookId` fails with `failure`. */
  readonly failNextGetStock: (bookId: string, failure: InventoryBookNotFound | ReadError) => Effect.Effect<void>
}

/** The control handle of `InMemoryInventory.layer`. */
export class InMemoryInventory extends Context.Tag("bookverse/testing/InMemoryInventory")<
  InMemoryInventory,
  InMemoryInventoryControl
>() {
  /**
   * An `InventoryClient` backed by a map of book id -> copies available, with the contract's rules:
   * an adjust that would go below zero is refused (`InsufficientOnHand`), unknown books are
   * `InventoryBookNotFound` (a positive adjust creates the record), every adjust is logged with its note.
   * Also provides `InMemoryInventory` to inspect and script it.
   */
  static layer(stock: Readonly<Record<string, number>> = {}): Layer.Layer<InventoryClient | InMemoryInventory> {
    return Layer.effectContext(
      Effect.gen(function* () {
        const levels = new Map<string, number>(Object.entries(stock))
        const calls: Array<InventoryCall> = []
        const log: Array<InventoryTransaction> = []
        const adjustFailures: Array<{
          bookId: string
          failure: AdjustError
          applied: boolean
          notePrefix: string
          stockAfter: number | undefined
        }> = []
        const readFailures: Array<{ bookId: string; failure: InventoryBookNotFound | ReadError }> = []
        const slowAdjusts: Array<{ bookId: string; delay: Duration.DurationInput }> = []
        const takeFirst = <T extends { readonly bookId: string; readonly notePrefix?: string }>(
          list: Array<T>,
          bookId: string,
          note = ""
        ): T | undefined => {
          const i = list.findIndex((s) => s.bookId === bookId && note.startsWith(s.notePrefix ?? ""))
          return i === -1 ? undefined : list.splice(i, 1)[0]
        }
        const apply = (bookId: string, change: number, note: string): InventoryTransaction => {
          levels.set(bookId, (levels.get(bookId) ?? 0) + change)
          const tx: InventoryTransaction = {
            id: randomUUID(),
            bookId,
            quantityChange: change,
            notes: note,
            timestamp: new Date()
          }
          log.push(tx)
          return tx
        }

        const client = InventoryClient.of({
          getStock: (bookId: BookId) =>
            Effect.suspend(() => {
              calls.push({ op: "getStock", bookId })
              const s = takeFirst(readFailures, bookId)
              if (s !== undefined) return Effect.fail(s.failure)
              const available = levels.get(bookId)
              return available === undefined
                ? Effect.fail(new InventoryBookNotFound({ bookId }))
                : Effect.succeed({ bookId, available })
            }),
          adjust: (bookId: BookId, change: number, note: string) =>
            Effect.suspend((): Effect.Effect<InventoryTransaction, AdjustError> => {
              calls.push({ op: "adjust", bookId, change, note })
              const slow = takeFirst(slowAdjusts, bookId)
              const now = adjustNow(bookId, change, note)
              return slow === undefined ? now : Effect.zipRight(Effect.sleep(slow.delay), now)
            }),
          findAdjustment: (bookId: BookId, note: string, since: Date) =>
            Effect.sync(() =>
              Option.fromNullable(
                log.find((t) => t.bookId === bookId && t.notes === note && t.timestamp.getTime() >= since.getTime() - 60_000)
              )
            )
        })

        /** An adjust by the contract's rules, or the failure scripted for it. */
        function adjustNow(bookId: BookId, change: number, note: string) {
          return Effect.suspend((): Effect.Effect<InventoryTransaction, AdjustError> => {
            const s = takeFirst(adjustFailures, bookId, note)
            if (s !== undefined) {
              if (s.applied) apply(bookId, change, note)
              if (s.stockAfter !== undefined) levels.set(bookId, s.stockAfter)
              return Effect.fail(s.failure)
            }
            const current = levels.get(bookId)
            if (current === undefined && change < 0) return Effect.fail(new InventoryBookNotFound({ bookId }))
            if ((current ?? 0) + change < 0) {
              return Effect.fail(
                new InsufficientOnHand({ bookId, detail: "Invalid adjustment - would result in negative inventory" })
              )
            }
            return Effect.succeed(apply(bookId, change, note))
          })
        }

        const control = InMemoryInventory.of({
          stockOf: (bookId) => Effect.sync(() => levels.get(bookId)),
          setStock: (bookId, quantity) => Effect.sync(() => void levels.set(bookId, quantity)),
          slowNextAdjust: (bookId, delay) => Effect.sync(() => void slowAdjusts.push({ bookId, delay })),
          calls: Effect.sync(() => [...calls]),
          transactions: Effect.sync(() => [...log]),
          failNextAdjust: (bookId, failure, options) =>
            Effect.sync(
              () =>
                void adjustFailures.push({
                  bookId,
                  failure,
                  applied: options?.applied === true,
                  notePrefix: options?.notePrefix ?? "",
                  stockAfter: options?.stockAfter
                })
            ),
          failNextGetStock: (bookId, failure) => Effect.sync(() => void readFailures.push({ bookId, failure }))
        })
        return Context.make(InventoryClient, client).pipe(Context.add(InMemoryInventory, control))
      })
    )
  }
}

// ---------------------------------------------------------------------------------------------
// Scripted payments
// ---------------------------------------------------------------------------------------------

/** What the scripted gateway answers for one charge. */
/**
 * How the scripted gateway answers one charge: approve, decline, or approve only after a while
 * (by Effect's `Clock`, so a test moves it on with `TestClock`), e.g. to keep a saga in flight.
 */
export type PaymentScript = "approve" | "decline" | { readonly approveAfter: Duration.DurationInput }

/** What a test sees of the scripted gateway: the charges it was asked for, in order. */
export interface ScriptedPaymentsControl {
  readonly charges: Effect.Effect<ReadonlyArray<{ readonly orderId: string; readonly amount: number }>>
}

/** The control handle of `ScriptedPayments.layer`. */
export class ScriptedPayments extends Context.Tag("bookverse/testing/ScriptedPayments")<
  ScriptedPayments,
  ScriptedPaymentsControl
>() {
  /**
   * A `PaymentGateway` answering each charge with the next entry of `script`; once the script is
   * used up it answers `otherwise` (default "approve").
   */
  static layer(
    script: ReadonlyArray<PaymentScript> = [],
    otherwise: PaymentScript = "approve"
  ): Layer.Layer<PaymentGateway | ScriptedPayments> {
    return Layer.effectContext(
      Effect.gen(function* () {
        const queue = yield* Ref.make<ReadonlyArray<PaymentScript>>(script)
        const charges: Array<{ orderId: string; amount: number }> = []
        const gateway = PaymentGateway.of({
          charge: (request) =>
            Effect.gen(function* () {
              charges.push({ orderId: request.orderId, amount: request.amount })
              const next = yield* Ref.modify(queue, (q) => [q[0] ?? otherwise, q.slice(1)] as const)
              if (next === "decline") return yield* Effect.fail(new PaymentDeclined({ reason: "declined by script" }))
              if (next !== "approve") yield* Effect.sleep(next.approveAfter)
              return { reference: `test_${request.orderId}` } satisfies PaymentReceipt
            })
        })
        const control = ScriptedPayments.of({ charges: Effect.sync(() => [...charges]) })
        return Context.make(PaymentGateway, gateway).pipe(Context.add(ScriptedPayments, control))
      })
    )
  }
}

// ---------------------------------------------------------------------------------------------
// Database and the whole saga
// ---------------------------------------------------------------------------------------------

/** A fresh in-memory SQLite database, migrated. */
export const InMemoryDatabaseLayer: Layer.Layer<SqlClient.SqlClient> = InMemoryDatabase

/** An inventory whose health ping always answers. */
export const AlwaysReachableInventory = Layer.succeed(InventoryHealth, { ping: Effect.succeed(true) })

/** A circuit breaker that opens after 5 failures for 10 s (in memory, on Effect's `Clock`). */
export const TestCircuitBreaker: Layer.Layer<CircuitBreaker> = Layer.effect(
  CircuitBreaker,
  makeCircuitBreaker({ failureThreshold: 5, cooldown: Duration.seconds(10) })
)

const TestIdempotencyStore = Layer.effect(
  IdempotencyStore,
  makeIdempotencyStore({ ttl: Duration.hours(24), staleClaimAfter: Duration.minutes(2) })
)

/** The SQL repositories (orders, outbox, idempotency keys with a 24 h ttl) on the `SqlClient` in context. */
export const TestRepositories = Layer.mergeAll(
  OrderRepoLive.pipe(Layer.provide(Layer.merge(OutboxLive, TestIdempotencyStore))),
  OutboxLive,
  TestIdempotencyStore,
  HealthProbeLive.pipe(Layer.provide([TestCircuitBreaker, AlwaysReachableInventory]))
)

/**
 * The real saga on an in-memory inventory seeded with `stock` (book id -> copies), a scripted
 * gateway (`payments`, then approve) and a fresh in-memory database (or `database`). Provides `Checkout`, the
 * repositories, `SqlClient`, and the `InMemoryInventory` and `ScriptedPayments` controls.
 */
export const testCheckoutLayer = (options: {
  readonly stock?: Readonly<Record<string, number>>
  readonly payments?: ReadonlyArray<PaymentScript>
  /** The database to use instead of a fresh in-memory SQLite (it must be migrated). */
  readonly database?: Layer.Layer<SqlClient.SqlClient>
} = {}) =>
  Layer.mergeAll(
    Layer.scoped(Checkout, makeCheckout({ shutdownGrace: Duration.seconds(1), lease: Duration.seconds(30) })),
    Layer.effect(
      Recovery,
      makeRecovery({
        interval: Duration.seconds(5),
        lease: Duration.seconds(30),
        batchSize: 50,
        maxBackoff: Duration.minutes(5)
      })
    )
  ).pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        InMemoryInventory.layer(options.stock),
        ScriptedPayments.layer(options.payments),
        TestRepositories,
        TestCircuitBreaker,
        NoCrashPoints
      )
    ),
    Layer.provideMerge(options.database ?? InMemoryDatabase)
  )

export { CreateOrderRequest } from "./domain/Order.js"
