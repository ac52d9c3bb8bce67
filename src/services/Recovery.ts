import { Cause, Chunk, Clock, Config, Context, Duration, Effect, Either, Layer, Option, Schedule } from "effect"
import { randomUUID } from "node:crypto"
import { hostname } from "node:os"
import type { OrderId } from "../domain/Ids.js"
import { Order, type StockState } from "../domain/Order.js"
import { encodeStored, orderCreatedData, RecoveryLease } from "./Checkout.js"
import { IdempotencyStore } from "./IdempotencyStore.js"
import { InventoryClient } from "./InventoryClient.js"
import { OrderRepo, type OrderRecord } from "./OrderRepo.js"

/** How one order's recovery ended. */
export type RecoveryOutcome = "confirmed" | "cancelled" | "payment_failed" | "deferred" | "skipped"

/** What one pass of the recovery loop did. */
export interface RecoveryReport {
  readonly examined: number
  readonly outcomes: Readonly<Record<RecoveryOutcome, number>>
  /** In-flight idempotency keys whose process died before creating an order, now released. */
  readonly keysReleased: number
  /** In-flight keys of orders already final (the process died before storing the answer), now settled. */
  readonly keysSettled: number
}

/**
 * Recovery (issue "No stock lost or doubled"): drives every abandoned PENDING order to a final
 * state from its saga journal and the inventory's transaction log. Payment recorded as succeeded
 * means CONFIRMED (with its outbox event); otherwise every taken line is given back and the order
 * is CANCELLED (PAYMENT_FAILED when the payment was declined). A give-back that fails is retried
 * on a later pass, with exponential backoff; the order stays PENDING meanwhile, never finished
 * while stock is still held. Orders are claimed with an atomic lease, so two processes on the
 * same database never act on the same order.
 */
export interface RecoveryService {
  /** One pass over the orders due for recovery. */
  readonly runOnce: Effect.Effect<RecoveryReport>
  /** Recovers one order, if it is PENDING and this process can claim it. */
  readonly recoverOrder: (orderId: OrderId) => Effect.Effect<RecoveryOutcome>
}

/** The recovery loop's service. */
export class Recovery extends Context.Tag("bookverse/Recovery")<Recovery, RecoveryService>() {}

/** How often recovery runs, the lease, and the batch size. */
export interface RecoveryOptions {
  /** Between passes (`RECOVERY_INTERVAL_SECONDS`, 5); also the first backoff step. */
  readonly interval: Duration.Duration
  /** See `CheckoutOptions.lease` (`RECOVERY_LEASE_SECONDS`, 30). */
  readonly lease: Duration.Duration
  /** Orders per pass. */
  readonly batchSize: number
  /** The longest wait between two attempts at one order. */
  readonly maxBackoff: Duration.Duration
}

/** `RECOVERY_INTERVAL_SECONDS` (5) and `RECOVERY_LEASE_SECONDS` (30). */
export const RecoveryConfig: Config.Config<RecoveryOptions> = Config.all({
  interval: Config.number("RECOVERY_INTERVAL_SECONDS").pipe(
    Config.validate({ message: "must be a positive number of seconds", validation: (n) => n > 0 }),
    Config.withDefault(5),
    Config.map((s) => Duration.millis(Math.round(s * 1000)))
  ),
  lease: RecoveryLease,
  batchSize: Config.succeed(50),
  maxBackoff: Config.succeed(Duration.minutes(5))
})

const emptyOutcomes = (): Record<RecoveryOutcome, number> => ({
  confirmed: 0,
  cancelled: 0,
  payment_failed: 0,
  deferred: 0,
  skipped: 0
})

/** Builds recovery on the services in context. */
export const makeRecovery = (options: RecoveryOptions) =>
  Effect.gen(function* () {
    const orders = yield* OrderRepo
    const keys = yield* IdempotencyStore
    const inventory = yield* InventoryClient
    const owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`
    const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))

    /** The wait before attempt `n + 1` (n >= 1): exponential from `interval`, capped at `maxBackoff`. */
    const backoff = Schedule.exponential(options.interval, 2).pipe(
      Schedule.map((d) => Duration.min(d, options.maxBackoff))
    )
    const delayAfter = (attempts: number) =>
      Effect.map(
        Schedule.run(backoff, 0, Array.from({ length: Math.max(1, attempts) }, () => undefined)),
        (delays) => Option.getOrElse(Chunk.last(delays), () => options.interval)
      )

    /** Settles one order from its journal; fails (to be deferred) when the inventory cannot answer. */
    const settle = (record: OrderRecord) =>
      Effect.gen(function* () {
        const orderId = record.order.orderId
        const since = record.order.createdAt
        const states: Array<StockState> = [...record.lineStates]
        const items = record.order.items
        const journal = (lineNo: number, state: StockState) =>
          Effect.zipRight(Effect.sync(() => void (states[lineNo] = state)), orders.setLineStates(orderId, [lineNo], state))

        // 1. takes whose outcome was never journaled: the transaction log says whether they happened
        for (const [lineNo, item] of items.entries()) {
          const state = states[lineNo]
          if (state !== "pending" && state !== "unknown") continue
          const found = yield* inventory.findAdjustment(item.bookId, `order:${orderId}:${lineNo}`, since)
          if (Option.isSome(found)) yield* journal(lineNo, "taken")
          else if (state === "unknown") yield* journal(lineNo, "pending")
        }

        // 2. paid: the order stands; nothing gives stock back
        if (record.paymentState === "succeeded") {
          if (states.some((s) => s !== "taken")) {
            return yield* Effect.die(new Error(`order ${orderId} is paid but lines are ${states.join(",")}`))
          }
          const at = yield* now
          const order = Order.make({ ...record.order, status: "CONFIRMED" })
          const confirmed = yield* orders.confirm(
            orderId,
            { type: "order.created", aggregateId: orderId, payload: orderCreatedData(order, record.userId) },
            at
          )
          if (confirmed) yield* keys.completeForOrder(orderId, 201, encodeStored({ outcome: "confirmed", order }), at)
          return "confirmed" as const
        }

        // 3. not paid: give back every line still held, newest first; a give-back may already have happened
        for (let lineNo = items.length - 1; lineNo >= 0; lineNo--) {
          const state = states[lineNo]
          const item = items[lineNo]
          if (item === undefined || (state !== "taken" && state !== "return_failed")) continue
          const note = `compensate:${orderId}:${lineNo}`
          const done = yield* inventory.findAdjustment(item.bookId, note, since)
          if (Option.isSome(done)) {
            yield* journal(lineNo, "returned")
            continue
          }
          const result = yield* Effect.either(inventory.adjust(item.bookId, item.qty, note))
          if (Either.isLeft(result)) {
            yield* journal(lineNo, "return_failed")
            return yield* Effect.fail(`give-back of line ${lineNo} failed: ${result.left._tag}`)
          }
          yield* journal(lineNo, "returned")
        }

        const at = yield* now
        if (record.paymentState === "declined") {
          const finished = yield* orders.finish(orderId, "PAYMENT_FAILED", "payment declined (recovered)", at)
          if (finished) {
            const stored = encodeStored({ outcome: "payment_failed", orderId, reason: "payment declined" })
            yield* keys.completeForOrder(orderId, 400, stored, at)
          }
          return "payment_failed" as const
        }
        const finished = yield* orders.finish(orderId, "CANCELLED", "abandoned saga recovered", at)
        if (finished) yield* keys.releaseForOrder(orderId)
        return "cancelled" as const
      })

    const recoverOrder = (orderId: OrderId): Effect.Effect<RecoveryOutcome> =>
      Effect.gen(function* () {
        const at = yield* now
        const claimed = yield* orders.claim(orderId, owner, at, new Date(at.getTime() + Duration.toMillis(options.lease)))
        if (!claimed) return "skipped" as const
        const record = yield* orders.findRecord(orderId)
        if (Option.isNone(record) || record.value.order.status !== "PENDING") return "skipped" as const
        const outcome = yield* settle(record.value).pipe(
          Effect.catchAllCause((cause) =>
            Effect.gen(function* () {
              const attempts = record.value.recoveryAttempts + 1
              const delay = yield* delayAfter(attempts)
              yield* orders.deferRecovery(orderId, new Date((yield* now).getTime() + Duration.toMillis(delay)))
              yield* Effect.logWarning("recovery deferred").pipe(
                Effect.annotateLogs({ orderId, attempts, retryInMs: Duration.toMillis(delay), cause: Cause.pretty(cause) })
              )
              return "deferred" as const
            })
          )
        )
        if (outcome !== "deferred") yield* Effect.logInfo("order recovered").pipe(Effect.annotateLogs({ orderId, outcome }))
        return outcome
      }).pipe(Effect.withSpan("Recovery.recoverOrder"))

    const runOnce = Effect.gen(function* () {
      const at = yield* now
      const staleBefore = new Date(at.getTime() - Duration.toMillis(options.lease))
      const keysReleased = yield* keys.releaseAbandoned(staleBefore)
      // a key still in flight for a final order: store what the order decided, or free it
      const stuck = yield* keys.findStuck(staleBefore)
      for (const orderId of stuck) {
        const record = yield* orders.findRecord(orderId)
        if (Option.isNone(record)) continue
        const { order } = record.value
        if (order.status === "CONFIRMED") {
          yield* keys.completeForOrder(orderId, 201, encodeStored({ outcome: "confirmed", order }), at)
        } else if (order.status === "PAYMENT_FAILED") {
          const stored = encodeStored({ outcome: "payment_failed", orderId, reason: "payment declined" })
          yield* keys.completeForOrder(orderId, 400, stored, at)
        } else {
          yield* keys.releaseForOrder(orderId)
        }
      }
      const due = yield* orders.findRecoverable(at, staleBefore, options.batchSize)
      const outcomes = emptyOutcomes()
      for (const orderId of due) outcomes[yield* recoverOrder(orderId)] += 1
      return { examined: due.length, outcomes, keysReleased, keysSettled: stuck.length } satisfies RecoveryReport
    }).pipe(Effect.withSpan("Recovery.runOnce"))

    return Recovery.of({ runOnce, recoverOrder })
  })

/** Recovery configured by `RecoveryConfig`. */
export const RecoveryLive = Layer.effect(Recovery, Effect.flatMap(RecoveryConfig, makeRecovery))

/**
 * Runs recovery at start-up and then every `RECOVERY_INTERVAL_SECONDS`, for as long as the
 * layer's scope is open; a pass that dies is logged and the loop goes on.
 */
export const RecoveryLoopLive = Layer.scopedDiscard(
  Effect.gen(function* () {
    const recovery = yield* Recovery
    const { interval } = yield* RecoveryConfig
    const pass = recovery.runOnce.pipe(
      Effect.tap((report) =>
        report.examined > 0 || report.keysReleased > 0 || report.keysSettled > 0
          ? Effect.logInfo("recovery pass").pipe(
              Effect.annotateLogs({
                ...report.outcomes,
                examined: report.examined,
                keysReleased: report.keysReleased,
                keysSettled: report.keysSettled
              })
            )
          : Effect.void
      ),
      Effect.catchAllCause((cause) => Effect.logError("recovery pass failed", cause))
    )
    yield* Effect.forkScoped(Effect.repeat(pass, Schedule.spaced(interval)))
  })
)
