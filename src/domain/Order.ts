import { Schema } from "effect"
import { BookId, BookIdFromInput, IdempotencyKey, OrderId, UserId } from "./Ids.js"
import { Amount, Cents, centsToNumber, Currency, UnitPrice } from "./Money.js"

/**
 * An order's lifecycle. PENDING -> CONFIRMED | PAYMENT_FAILED | CANCELLED; no other transitions
 * (ARCHITECTURE.md, "Order states").
 */
export const OrderStatus = Schema.Literal("PENDING", "CONFIRMED", "CANCELLED", "PAYMENT_FAILED")
export type OrderStatus = typeof OrderStatus.Type

/** Whether `from -> to` is an allowed transition of the order state machine. */
export const canTransition = (from: OrderStatus, to: OrderStatus): boolean =>
  from === "PENDING" && to !== "PENDING"

/**
 * The saga journal's record of one line's stock: `pending` (not taken yet), `taken` (the adjust
 * was applied), `unknown` (the adjust's outcome could not be learned), `returned` (given back),
 * `return_failed` (the give-back failed; recovery retries it).
 */
export const StockState = Schema.Literal("pending", "taken", "unknown", "returned", "return_failed")
export type StockState = typeof StockState.Type

/** The payment outcome the saga journals before it goes on. */
export const PaymentState = Schema.Literal("none", "succeeded", "declined")
export type PaymentState = typeof PaymentState.Type

/** The most lines one order may have. */
export const MAX_LINES = 100
/** The most copies of one book on one line. */
export const MAX_QTY = 10_000

/** One requested line: a book, how many copies (1..10000) and the unit price in cents. */
export class OrderLineRequest extends Schema.Class<OrderLineRequest>("OrderLineRequest")({
  bookId: BookIdFromInput,
  qty: Schema.Int.annotations({ message: () => ({ message: "must be an integer", override: true }) }).pipe(
    Schema.between(1, MAX_QTY, { message: () => `must be an integer from 1 to ${MAX_QTY}` })
  ),
  unitPrice: UnitPrice
}, { message: () => 'must be an object {"bookId", "qty", "unitPrice"}' }) {}

const Lines = Schema.Array(OrderLineRequest).annotations({ message: () => "must be an array of lines" }).pipe(
  Schema.minItems(1, { message: () => "must have at least 1 line" }),
  Schema.maxItems(MAX_LINES, { message: () => `must have at most ${MAX_LINES} lines` }),
  Schema.filter((lines) => {
    const seen = new Set<string>()
    const issues: Array<Schema.FilterIssue> = []
    lines.forEach((line, i) => {
      // UUIDs are case-insensitive: "ABC..." and "abc..." are the same book
      const bookId = line.bookId.toLowerCase()
      if (seen.has(bookId)) {
        issues.push({ path: [i, "bookId"], message: "appears on more than one line" })
      }
      seen.add(bookId)
    })
    return issues
  })
)

/**
 * The body of `POST /orders`: `{"userId", "items": [{"bookId", "qty", "unitPrice"}],
 * "idempotencyKey"?}`. Unknown fields are rejected by the decoder (see `decodeOptions`).
 */
export class CreateOrderRequest extends Schema.Class<CreateOrderRequest>("CreateOrderRequest")({
  userId: UserId,
  items: Lines,
  idempotencyKey: Schema.optional(IdempotencyKey)
}) {}

/** One line of an order as stored and answered: amounts in cents inside, decimals on the wire. */
export class OrderItem extends Schema.Class<OrderItem>("OrderItem")({
  bookId: BookId,
  qty: Schema.Int,
  unitPrice: Amount,
  lineTotal: Amount
}) {}

/**
 * An order as the API answers it: `{"orderId", "status", "total", "currency": "USD", "items",
 * "createdAt"}`; `createdAt` is ISO-8601 UTC with `Z`.
 */
export class Order extends Schema.Class<Order>("Order")({
  orderId: OrderId,
  status: OrderStatus,
  total: Amount,
  currency: Schema.Literal(Currency),
  items: Schema.Array(OrderItem),
  createdAt: Schema.Date
}) {}

/**
 * An order in its JSON form (`Order`'s encoded side: amounts as decimal numbers of dollars,
 * `createdAt` as ISO-8601 UTC text), as `Schema.encodeSync(Order)` makes it, key for key. Written
 * out field by field: the schema's encoder also re-checks every value (UUIDs, integer cents,
 * the date), which an `Order` already guarantees, and cost ~3% of the api's CPU per order. A
 * property test (`test/unit/domain.test.ts`) holds the two equal on arbitrary orders.
 */
export const encodeOrder = (order: Order): typeof Order.Encoded => ({
  orderId: order.orderId,
  status: order.status,
  total: centsToNumber(order.total),
  currency: order.currency,
  items: order.items.map((item) => ({
    bookId: item.bookId,
    qty: item.qty,
    unitPrice: centsToNumber(item.unitPrice),
    lineTotal: centsToNumber(item.lineTotal)
  })),
  createdAt: order.createdAt.toISOString()
})

/**
 * Totals of a decoded request, in cents: per line and for the order. The lines were validated
 * when the request was decoded, and the largest total (100 lines x 10,000 copies x 99,999,999
 * cents, about 1e14) is an exact integer, so the items are not validated again (~17 us a line).
 */
export const priceLines = (
  lines: ReadonlyArray<OrderLineRequest>
): { readonly items: ReadonlyArray<OrderItem>; readonly total: Cents } => {
  const items = lines.map((line) =>
    OrderItem.make({
      bookId: line.bookId,
      qty: line.qty,
      unitPrice: line.unitPrice,
      lineTotal: Cents.make(line.unitPrice * line.qty, true)
    }, true)
  )
  let total = 0
  for (const item of items) total += item.lineTotal
  return { items, total: Cents.make(total, true) }
}
