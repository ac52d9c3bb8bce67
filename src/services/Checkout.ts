import {
  Cause,
  Config,
  Context,
  Duration,
  Effect,
  Exit,
  Fiber,
  FiberSet,
  Layer,
  Metric,
  Option,
  Schedule,
  Schema
} from "effect"
import { randomUUID } from "node:crypto"
import {
  type CheckoutError,
  IdempotencyConflict,
  IdempotencyInProgress,
  InsufficientStock,
  OrderNotFound,
  PaymentFailed,
  type StockShortfall,
  UnknownBook,
  UpstreamTimeout,
  UpstreamUnavailable
} from "../domain/Errors.js"
import { fingerprint } from "../domain/Fingerprint.js"
import { OrderId } from "../domain/Ids.js"
import { type Cents, Currency } from "../domain/Money.js"
import {
  type CreateOrderRequest,
  encodeOrder,
  Order,
  type OrderItem,
  priceLines,
  type StockState
} from "../domain/Order.js"
import { CircuitBreaker } from "./CircuitBreaker.js"
import { annotateFiberLogs } from "./Correlation.js"
import { CrashPoints } from "./CrashPoints.js"
import { idempotencyReplays, recordCompensation } from "./Metrics.js"
import { IdempotencyStore, type KeyScope } from "./IdempotencyStore.js"
import {
  type AdjustError,
  InventoryClient,
  type InventoryBookNotFound,
  type ReadError
} from "./InventoryClient.js"
import { OrderRepo } from "./OrderRepo.js"
import type { OutboxEvent } from "./Outbox.js"
import { PaymentGateway } from "./PaymentGateway.js"
import { retryAfterFirstFailure } from "./Retry.js"
import { tracedWhereBuilt } from "./Tracing.js"

/** What `placeOrder` answers: the order, and whether it is a replay of an earlier request's. */
export interface PlacedOrder {
  readonly order: Order
  /** True when the idempotency key had already completed and this is its stored response. */
  readonly replayed: boolean
}

/** A decision about money that a key replays (what `IdempotencyStore.complete` stores). */
export const StoredOutcome = Schema.Union(
  Schema.Struct({ outcome: Schema.Literal("confirmed"), order: Order }),
  Schema.Struct({ outcome: Schema.Literal("payment_failed"), orderId: Schema.String, reason: Schema.String })
)
export type StoredOutcome = typeof StoredOutcome.Type

/**
 * The order saga (ARCHITECTURE.md, "The saga", steps 2-9), written against service tags only.
 */
export interface CheckoutService {
  /**
   * Places an order exactly once per idempotency key (scoped to `request.userId`; `key` is
   * `None` when the client sent none, which is then not deduplicated). Runs detached from the
   * caller: interrupting the caller (a client that hung up) does not stop the saga.
   * Succeeds with the CONFIRMED order (or the replay of a key's stored one). Fails with a
   * `CheckoutError`: `PaymentFailed`, `InsufficientStock`, `UnknownBook`, `IdempotencyConflict`,
   * `IdempotencyInProgress`, `UpstreamUnavailable` or `UpstreamTimeout`.
   */
  readonly placeOrder: (
    request: CreateOrderRequest,
    key: Option.Option<string>
  ) => Effect.Effect<PlacedOrder, CheckoutError>
  /** The order with this id; `OrderNotFound` when there is none (a non-UUID id included). */
  readonly getOrder: (orderId: string) => Effect.Effect<Order, OrderNotFound>
  /** Waits until no saga is running (used by graceful shutdown and tests). */
  readonly awaitIdle: Effect.Effect<void>
}

/** The checkout saga. */
export class Checkout extends Context.Tag("bookverse/Checkout")<Checkout, CheckoutService>() {}

/** Tuning of the saga that is not the inventory's policy. */
export interface CheckoutOptions {
  /** How long shutdown waits for sagas in flight (`SHUTDOWN_GRACE_SECONDS`, default 10). */
  readonly shutdownGrace: Duration.Duration
  /**
   * How long a new order belongs to its saga before recovery may take it over, and how long a
   * PENDING order must go without a journal write to count as abandoned (`RECOVERY_LEASE_SECONDS`, 30).
   */
  readonly lease: Duration.Duration
}

/** `RECOVERY_LEASE_SECONDS` (30): see `CheckoutOptions.lease`. */
export const RecoveryLease = Config.number("RECOVERY_LEASE_SECONDS").pipe(
  Config.validate({ message: "must be a positive number of seconds", validation: (n) => n > 0 }),
  Config.withDefault(30),
  Config.map((s) => Duration.millis(Math.round(s * 1000)))
)

/** `SHUTDOWN_GRACE_SECONDS` (10) and `RECOVERY_LEASE_SECONDS` (30). */
export const CheckoutConfig: Config.Config<CheckoutOptions> = Config.all({
  lease: RecoveryLease,
  shutdownGrace: Config.number("SHUTDOWN_GRACE_SECONDS").pipe(
    Config.validate({ message: "must be a number of seconds >= 0", validation: (n) => n >= 0 }),
    Config.withDefault(10),
    Config.map((s) => Duration.millis(Math.round(s * 1000)))
  )
})

const decodeOrderId = Schema.decodeUnknownOption(OrderId)
const decodeStored = Schema.decodeUnknownOption(StoredOutcome)
/** A key's stored outcome as the JSON the store keeps. */
export const encodeStored = Schema.encodeSync(StoredOutcome)

/** `orderCreatedData` from the order's JSON form already made (`encodeOrder`), for a caller that needs that form too. */
const createdDataOf = ({ orderId, total, currency, items, createdAt }: typeof Order.Encoded, userId: string) =>
  ({ orderId, userId, total, currency, items, createdAt })

/**
 * The `data` of an `order.created` event: what the rest of the platform learns of a new order
 * (`OrderCreatedData` in `src/domain/Events.ts`): the order's JSON form with the buyer, without
 * the status (always CONFIRMED).
 */
export const orderCreatedData = (order: Order, userId: string) => createdDataOf(encodeOrder(order), userId)

const upstreamError = (e: ReadError | AdjustError): UpstreamUnavailable | UpstreamTimeout => {
  switch (e._tag) {
    case "InventoryTimeout":
      return new UpstreamTimeout({ reason: e.reason })
    case "InventoryBusy":
      return new UpstreamUnavailable({ reason: e.reason, retryAfterSeconds: 1 })
    case "InventoryUnavailable":
      return new UpstreamUnavailable({ reason: e.reason })
    case "AdjustOutcomeUnknown":
      // stock may still be held: say so, since a 502 otherwise means everything was given back
      return new UpstreamUnavailable({
        reason: `the answer to a stock change was lost (${e.reason}); the order stays PENDING until recovery settles it`
      })
    case "InventoryRejected":
      return new UpstreamUnavailable({ reason: `inventory rejected the request (${e.status}): ${e.detail}` })
    default:
      return new UpstreamUnavailable({ reason: e._tag })
  }
}

/**
 * Runs `f` for every line of an order concurrently (the inventory client's bulkhead bounds the
 * calls) and succeeds with their results in line order; a one-line order runs its line in place.
 * The lines' fibers are awaited, not joined (a join merges every fiber ref and service of the
 * child into the parent, which the saga does not need). When a line fails, the others are
 * interrupted and awaited, and the first failure in line order is the result; when the caller is
 * interrupted, every line is interrupted and awaited first, so a line that cannot be interrupted
 * (a take) has ended, and recorded what it took, before the caller's own clean-up runs.
 */
const allLines = <A, E, R>(
  items: ReadonlyArray<OrderItem>,
  f: (item: OrderItem, lineNo: number) => Effect.Effect<A, E, R>
): Effect.Effect<Array<A>, E, R> =>
  items.length === 1
    ? Effect.map(f(items[0]!, 0), (a) => [a])
    : Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(
          Effect.forEach(items, (item, lineNo) => Effect.fork(restore(f(item, lineNo)))),
          (fibers) => restore(awaitInOrder(fibers)).pipe(Effect.onInterrupt(() => Fiber.interruptAll(fibers)))
        )
      )

/**
 * The fibers' results in order; at the first failure in line order (every line before it having
 * succeeded), the rest are interrupted (and awaited) and that failure is the result. One wait for
 * all the fibers: an observer on each (as `FiberSet` registers its own), instead of a `Fiber.await`
 * per fiber (each a message to the fiber and an interruptible region of its own). No canceler (it
 * would cost an interruptible region): an interrupted wait leaves its observers, which the caller
 * makes harmless by interrupting the fibers; a resume after the interruption is ignored.
 */
const awaitInOrder = <A, E>(fibers: ReadonlyArray<Fiber.RuntimeFiber<A, E>>): Effect.Effect<Array<A>, E> =>
  // (no fibers, no observer to resume the wait)
  fibers.length === 0 ? Effect.succeed([]) : Effect.async<Array<A>, E>((resume) => {
    const exits: Array<Exit.Exit<A, E> | undefined> = fibers.map(() => undefined)
    const results: Array<A> = []
    let settled = false
    const observe = (lineNo: number) => (exit: Exit.Exit<A, E>) => {
      exits[lineNo] = exit
      if (settled) return
      // the lines are settled in order: a line's failure counts once every line before it succeeded
      for (let next = exits[results.length]; next !== undefined; next = exits[results.length]) {
        if (Exit.isFailure(next)) {
          settled = true
          return resume(Effect.zipRight(Fiber.interruptAll(fibers.slice(results.length + 1)), Effect.failCause(next.cause)))
        }
        results.push(next.value)
      }
      if (results.length === fibers.length) {
        settled = true
        resume(Effect.succeed(results))
      }
    }
    const observers = fibers.map((_, lineNo) => observe(lineNo))
    // (an observer is called at once for a fiber that has already ended)
    fibers.forEach((fiber, lineNo) => fiber.addObserver(observers[lineNo]!))
  })

/**
 * Waits for `fiber` and ends as it ended (awaited, not joined: none of its fiber refs are merged
 * into the caller's). An observer on the fiber, instead of `Fiber.await`'s message to it. No
 * canceler (it would cost an interruptible region per order): an interrupted wait (a client that
 * hung up) leaves the observer on the fiber until it ends, and its late resume is ignored.
 */
const awaitFiber = <A, E>(fiber: Fiber.RuntimeFiber<A, E>): Effect.Effect<A, E> =>
  Effect.async<A, E>((resume) => fiber.addObserver(resume))

/** How a confirm that failed is tried again: up to 5 more times, after 50 ms and doubling. */
const confirmRetry = Schedule.exponential(Duration.millis(50)).pipe(Schedule.intersect(Schedule.recurs(5)))

/** Why a take or payment failed, before the order's final state is decided. */
type SagaFailure = CheckoutError

/**
 * Builds the saga on the services in context. Sagas run in a `FiberSet` owned by the layer's
 * scope; closing the scope first waits up to `shutdownGrace` for them, then interrupts the rest
 * (an interrupted saga gives back what it took).
 */
export const makeCheckout = (options: CheckoutOptions) =>
  Effect.gen(function* () {
    const inventory = yield* InventoryClient
    const payments = yield* PaymentGateway
    const traced = yield* tracedWhereBuilt
    const orders = yield* OrderRepo
    const keys = yield* IdempotencyStore
    const breaker = yield* CircuitBreaker
    const crash = yield* CrashPoints

    // the clock of the fiber that builds the service (`TestClock` in tests), read inside the steps
    // that need the time instead of in steps of its own
    const clock = yield* Effect.clock
    const now = (): Date => new Date(clock.unsafeCurrentTimeMillis())
    const leaseMs = Duration.toMillis(options.lease)

    // The sagas' heartbeat: while a saga lives its order stays in `inFlight`, and every third of a
    // lease one UPDATE extends the lease of every order in flight, so recovery never acts on an
    // order that is still being worked on, however long one inventory call takes. (Forked before
    // the sagas' set, so that it is stopped after shutdown has waited for them.)
    const inFlight = new Set<OrderId>()
    yield* Effect.suspend(() =>
      inFlight.size === 0
        ? Effect.void
        : orders.extendLeases([...inFlight], new Date(clock.unsafeCurrentTimeMillis() + leaseMs))
    ).pipe(
      // Beats come at a fixed rate, however long one takes, and a beat that hangs is given up after
      // a sixth of a lease: a lease just extended then still has two thirds left at the next beat.
      Effect.timeoutFail({ duration: Duration.millis(leaseMs / 6), onTimeout: () => "the update took longer than a sixth of a lease" }),
      Effect.catchAllCause((cause) => Effect.logWarning("could not extend the leases of the sagas in flight", cause)),
      Effect.repeat(Schedule.fixed(Duration.millis(leaseMs / 3))),
      Effect.forkScoped
    )

    const sagas = yield* FiberSet.make<PlacedOrder, CheckoutError>()
    yield* Effect.addFinalizer(() =>
      FiberSet.size(sagas).pipe(
        Effect.flatMap((n) =>
          n === 0
            ? Effect.void
            : Effect.logInfo("waiting for sagas in flight").pipe(
                Effect.annotateLogs("sagas", n),
                // a finalizer is uninterruptible: the wait is made interruptible, or the timeout could not end it
                Effect.zipRight(Effect.interruptible(FiberSet.awaitEmpty(sagas)).pipe(Effect.timeout(options.shutdownGrace), Effect.ignore))
              )
        )
      )
    )

    /** Forgets the key's in-flight claim (none without a key), so the same key may be tried again. */
    const releaseKeyOf = (scope: KeyScope | undefined) => (scope === undefined ? Effect.void : keys.release(scope))

    /** Step 4: stock on hand for every line, concurrently (the client's bulkhead bounds it). */
    const precheck = (items: ReadonlyArray<OrderItem>) =>
      Effect.gen(function* () {
        const results = yield* allLines(items, (item) => Effect.either(inventory.getStock(item.bookId)))
        const unknown: Array<string> = []
        const short: Array<StockShortfall> = []
        for (const [i, result] of results.entries()) {
          const item = items[i]!
          if (result._tag === "Left") {
            const e: InventoryBookNotFound | ReadError = result.left
            if (e._tag === "InventoryBookNotFound") unknown.push(item.bookId)
            else return yield* Effect.fail(upstreamError(e))
          } else if (result.right.available < item.qty) {
            short.push({ bookId: item.bookId, available: result.right.available, requested: item.qty })
          }
        }
        if (unknown.length > 0) return yield* Effect.fail(new UnknownBook({ bookIds: unknown }))
        if (short.length > 0) return yield* Effect.fail(new InsufficientStock({ details: short }))
      }).pipe(traced("Checkout.precheck"))

    /** The saga proper, once the key (if any) is ours; on the saga's own fiber (`placeOrder` forks one per order). */
    const run = (request: CreateOrderRequest, scope: KeyScope | undefined) =>
      Effect.gen(function* () {
        const releaseKey = releaseKeyOf(scope)
        const { items, total } = priceLines(request.items)

        // while the inventory is known to be down, fail fast without calling it
        yield* Effect.zipRight(breaker.guard, precheck(items)).pipe(Effect.tapError(() => releaseKey))

        // Step 5: the order, PENDING, with every line's stock state `pending`.
        const orderId = OrderId.make(randomUUID())
        const createdAt = now()
        yield* orders.insertPending({
          orderId,
          userId: request.userId,
          idempotencyKey: scope?.key ?? null,
          items,
          total,
          createdAt,
          leaseUntil: new Date(createdAt.getTime() + leaseMs)
        }, scope)
        // every later log line names the order (set on the saga's own fiber, which ends with it)
        yield* annotateFiberLogs({ orderId })
        // the heartbeat keeps this order's lease until the saga ends: this runs on the saga's own
        // fiber (`placeOrder` forks one per order), whose end, however it ends, takes the order out
        // (an observer on the fiber instead of `ensuring`'s uninterruptible region)
        return yield* Effect.withFiberRuntime<PlacedOrder, CheckoutError>((sagaFiber) => {
          inFlight.add(orderId)
          sagaFiber.addObserver(() => inFlight.delete(orderId))
          return settle(request, scope, orderId, items, total, createdAt)
        })
      }).pipe(traced("Checkout.saga"))

    /** Steps 6-9 for the PENDING order `orderId`: take, charge, confirm; or give back and finish it. */
    const settle = (
      request: CreateOrderRequest,
      scope: KeyScope | undefined,
      orderId: OrderId,
      items: ReadonlyArray<OrderItem>,
      total: Cents,
      createdAt: Date
    ) =>
      Effect.gen(function* () {
        const releaseKey = releaseKeyOf(scope)
        // The journal: each line's stock state, written before the step that depends on it starts.
        // A line stays `pending` until its take is known: recovery reads a `pending` (or `unknown`)
        // line's fate from the inventory's transaction log (the take's note), so the `taken` marks
        // can wait until every take has answered and be written in one statement.
        const states: Array<StockState> = items.map(() => "pending")
        const journal = (lineNos: ReadonlyArray<number>, state: StockState) =>
          Effect.suspend(() => {
            lineNos.forEach((lineNo) => void (states[lineNo] = state))
            return orders.setLineStates(orderId, lineNos, state)
          })

        // Step 6: take stock, line by line; each take is tied to its give-back.
        const take = (item: OrderItem, lineNo: number) =>
          inventory.adjust(item.bookId, -item.qty, `order:${orderId}:${lineNo}`).pipe(
            Effect.catchAll((e): Effect.Effect<never, SagaFailure> => {
              switch (e._tag) {
                case "InsufficientOnHand":
                  // Usually a lost race: someone took the last copies after the pre-check. When the
                  // stock on hand would in fact cover the line, the inventory refused it for some
                  // other reason, and that is its failure, not a shortage.
                  return inventory.getStock(item.bookId).pipe(
                    Effect.map((s) => s.available),
                    Effect.orElseSucceed(() => 0),
                    Effect.flatMap((available) =>
                      Effect.fail(
                        available >= item.qty
                          ? new UpstreamUnavailable({ reason: `the inventory refused the take: ${e.detail}` })
                          : new InsufficientStock({ details: [{ bookId: item.bookId, available, requested: item.qty }] })
                      )
                    )
                  )
                case "InventoryBookNotFound":
                  return Effect.fail(new UnknownBook({ bookIds: [item.bookId] }))
                case "AdjustOutcomeUnknown":
                  return Effect.zipRight(journal([lineNo], "unknown"), Effect.fail(upstreamError(e)))
                default:
                  return Effect.fail(upstreamError(e))
              }
            }),
            traced("Checkout.takeStock", { attributes: { lineNo } })
          )

        const giveBack = (item: OrderItem, lineNo: number) =>
          inventory.adjust(item.bookId, item.qty, `compensate:${orderId}:${lineNo}`).pipe(
            Effect.zipRight(journal([lineNo], "returned")),
            Effect.zipRight(recordCompensation("returned")),
            Effect.catchAll((e) =>
              Effect.zipRight(
                Effect.zipRight(journal([lineNo], "return_failed"), recordCompensation("failed")),
                Effect.logError("compensation failed; left for recovery").pipe(
                  Effect.annotateLogs({ bookId: item.bookId, lineNo, error: e._tag })
                )
              )
            ),
            traced("Checkout.returnStock", { attributes: { lineNo } })
          )

        let declined: string | undefined
        // the lines whose take was applied, in the order they were applied
        const taken: Array<readonly [OrderItem, number]> = []
        const giveBackTaken = Effect.suspend(() =>
          Effect.forEach([...taken].reverse(), ([item, lineNo]) => giveBack(item, lineNo), { discard: true })
        )
        const takeAndCharge = Effect.onExit(
          Effect.gen(function* () {
            // The lines are taken concurrently (the inventory client's bulkhead bounds how many
            // calls are in flight), and each take that was applied is remembered. When any take
            // or the payment fails (or the saga is interrupted), exactly the taken lines are given
            // back, the last taken first. A take in flight when another fails is not cut short
            // (it is uninterruptible), so its outcome is always known and journaled.
            yield* allLines(items, (item, lineNo) =>
              Effect.uninterruptible(Effect.map(take(item, lineNo), () => void taken.push([item, lineNo])))
            )
            // (a crash here leaves the taken lines `pending`: recovery finds them in the inventory's log)
            yield* crash.reached("after-take")
            yield* journal(taken.map(([, lineNo]) => lineNo), "taken")
            // Step 7: payment; a decline fails this step, and every taken line is given back.
            const receipt = yield* payments.charge({ orderId, amount: total }).pipe(
              Effect.catchTag("PaymentDeclined", (e) =>
                Effect.zipRight(
                  Effect.zipRight(
                    Effect.sync(() => void (declined = e.reason)),
                    orders.setPayment(orderId, "declined", null)
                  ),
                  Effect.fail(new PaymentFailed({ orderId, reason: e.reason }))
                )
              )
            )
            yield* orders.setPayment(orderId, "succeeded", receipt.reference)
            yield* crash.reached("after-payment")
          }),
          (exit) => (Exit.isFailure(exit) ? giveBackTaken : Effect.void)
        )

        const exit = yield* Effect.exit(takeAndCharge)
        if (Exit.isFailure(exit)) {
          // With concurrent takes, one failure interrupts its siblings: the saga fails with the
          // first real reason, not with the interruptions it caused.
          const cause = Option.match(Cause.failureOption(exit.cause), { onNone: () => exit.cause, onSome: Cause.fail })
          const held = states.some((s) => s === "unknown" || s === "return_failed")
          if (held) {
            // Stock may still be held: the order stays PENDING and the key in flight until recovery settles it.
            yield* Effect.logError("saga failed with stock possibly held; order left PENDING").pipe(
              Effect.annotateLogs({ lineStates: states })
            )
            return yield* Effect.failCause(cause)
          }
          const at = now()
          if (declined !== undefined) {
            yield* orders.finish(orderId, "PAYMENT_FAILED", declined, at)
            if (scope !== undefined) {
              const stored: StoredOutcome = { outcome: "payment_failed", orderId, reason: declined }
              yield* keys.complete(scope, 400, encodeStored(stored), at)
            }
          } else {
            yield* orders.finish(orderId, "CANCELLED", "stock not taken", at)
            yield* releaseKey
          }
          return yield* Effect.failCause(cause)
        }

        // Step 8: once paid, nothing gives stock back; a confirm that fails is retried.
        const confirmedAt = now()
        // every field was decoded or computed above from decoded input: no need to validate it again
        const order = Order.make({ orderId, status: "CONFIRMED", total, currency: Currency, items, createdAt }, true)
        // its JSON form, made once for the event and the stored answer
        const encoded = encodeOrder(order)
        const event: OutboxEvent = {
          type: "order.created",
          aggregateId: orderId,
          payload: createdDataOf(encoded, request.userId)
        }
        // Step 9, in the same transaction: the response the key replays.
        const answer = scope === undefined
          ? undefined
          : { scope, status: 201, body: { outcome: "confirmed", order: encoded } satisfies typeof StoredOutcome.Encoded }
        yield* retryAfterFirstFailure(Effect.sandbox(orders.confirm(orderId, event, confirmedAt, answer)), {
          schedule: confirmRetry
        }).pipe(Effect.unsandbox)
        yield* Effect.logInfo("order confirmed")
        return { order, replayed: false } satisfies PlacedOrder
      })

    /** Step 3: claim the key, or answer what it remembers. */
    const claimAndRun = (request: CreateOrderRequest, key: Option.Option<string>) =>
      Effect.gen(function* () {
        if (Option.isNone(key)) return yield* run(request, undefined)
        const scope: KeyScope = { userId: request.userId, key: key.value, fingerprint: fingerprint(request) }
        const claim = yield* keys.claim(scope, now())
        switch (claim._tag) {
          case "Claimed":
            return yield* run(request, scope)
          case "Conflict":
            return yield* Effect.fail(new IdempotencyConflict({ key: scope.key }))
          case "InProgress":
            return yield* Effect.fail(new IdempotencyInProgress({ key: scope.key, retryAfterSeconds: 1 }))
          default: {
            yield* Metric.increment(idempotencyReplays)
            const stored = decodeStored(claim.body)
            if (Option.isNone(stored)) return yield* Effect.die(new Error("stored idempotent response is unreadable"))
            if (stored.value.outcome === "confirmed") return { order: stored.value.order, replayed: true }
            return yield* Effect.fail(
              new PaymentFailed({ orderId: stored.value.orderId, reason: stored.value.reason, replayed: true })
            )
          }
        }
      })

    return Checkout.of({
      // awaited, not joined: the caller needs the saga's outcome, not its fiber refs (a join
      // diffs every fiber ref and service of the two fibers)
      placeOrder: (request, key) =>
        // interruptible whatever the caller is (a fiber inherits its parent's flags): shutdown must be
        // able to stop it; the takes that must not be cut short say so themselves
        Effect.flatMap(FiberSet.run(sagas)(Effect.interruptible(claimAndRun(request, key))), awaitFiber),
      getOrder: (orderId) =>
        Option.match(decodeOrderId(orderId), {
          onNone: () => Effect.fail(new OrderNotFound({ orderId })),
          onSome: (id) =>
            orders.findById(id).pipe(
              Effect.flatMap(
                Option.match({
                  onNone: () => Effect.fail(new OrderNotFound({ orderId })),
                  onSome: Effect.succeed
                })
              )
            )
        }),
      awaitIdle: FiberSet.awaitEmpty(sagas)
    })
  })

/** The saga on the live services in context, configured by `CheckoutConfig`. */
export const CheckoutLive = Layer.scoped(Checkout, Effect.flatMap(CheckoutConfig, makeCheckout))
