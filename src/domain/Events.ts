import { Either, JSONSchema, ParseResult, Schema } from "effect"
import { BookId, OrderId, UserId } from "./Ids.js"
import { Amount, Currency } from "./Money.js"

/**
 * The events checkout publishes, as CloudEvents 1.0 in structured JSON mode
 * (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md). Their JSON Schemas in
 * `contracts/` are derived from the Schemas here (`npm run schemas`).
 */

/** The `source` of every event checkout publishes. */
export const CheckoutSource = "bookverse-checkout" as const

/** The CloudEvents version of the envelope. */
export const SpecVersion = "1.0" as const

const ISO_UTC = "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z$"

/** An instant as `Date.prototype.toISOString` writes it: `2026-11-29T12:00:00.000Z` (UTC, milliseconds). */
export const IsoTimestamp = Schema.String.pipe(
  Schema.pattern(new RegExp(ISO_UTC)),
  Schema.filter((s) => !Number.isNaN(Date.parse(s)), { message: () => "must be a real instant" }),
  Schema.annotations({
    description: "An ISO-8601 UTC timestamp with milliseconds, e.g. 2026-11-29T12:00:00.000Z",
    jsonSchema: { format: "date-time", pattern: ISO_UTC }
  })
)

/** One line of a created order: the book, copies, and the amounts in USD (at most 2 fraction digits). */
export const OrderCreatedLine = Schema.Struct({
  bookId: BookId,
  qty: Schema.Number.pipe(Schema.int(), Schema.positive()),
  unitPrice: Amount,
  lineTotal: Amount
}).annotations({ title: "OrderCreatedLine" })

/**
 * The `data` of `order.created`: what the rest of the platform learns of a confirmed order. The
 * saga writes it into the outbox (`orderCreatedData` in `src/services/Checkout.ts`).
 */
export const OrderCreatedData = Schema.Struct({
  orderId: OrderId,
  userId: UserId,
  total: Amount,
  currency: Schema.Literal(Currency),
  items: Schema.Array(OrderCreatedLine).pipe(Schema.minItems(1)),
  createdAt: IsoTimestamp
}).annotations({ title: "OrderCreatedData" })
export type OrderCreatedData = typeof OrderCreatedData.Type

/** The `type` of the event announcing a confirmed order. */
export const OrderCreatedType = "order.created" as const

/**
 * `order.created` as published: a CloudEvents 1.0 envelope whose `id` is the outbox row id (the
 * same on every redelivery, so consumers deduplicate by it), `time` is when the order was
 * confirmed, and `data` is `OrderCreatedData`.
 */
export const OrderCreatedEvent = Schema.Struct({
  specversion: Schema.Literal(SpecVersion),
  id: Schema.String.pipe(Schema.minLength(1)).annotations({
    description: "Unique per event and stable across redeliveries: deduplicate by it"
  }),
  source: Schema.Literal(CheckoutSource),
  type: Schema.Literal(OrderCreatedType),
  time: IsoTimestamp,
  datacontenttype: Schema.Literal("application/json"),
  data: OrderCreatedData
}).annotations({
  title: "order.created",
  description: "BookVerse Checkout confirmed an order (CloudEvents 1.0, structured JSON mode)"
})
export type OrderCreatedEvent = typeof OrderCreatedEvent.Type

/** A CloudEvent as it goes on the wire (the JSON-ready encoded form); `order.created` is the only one today. */
export type CloudEvent = typeof OrderCreatedEvent.Encoded

/** An outbox row to turn into an event: its id, type, creation time and stored payload. */
export interface EventRow {
  readonly id: string
  readonly type: string
  readonly createdAt: Date
  readonly payload: unknown
}

/**
 * The wire form (JSON-ready object) of the CloudEvent for an outbox row. Left with a message when
 * the row's type has no contract or its payload does not match it: no retry can fix either.
 */
export const toCloudEvent = (row: EventRow): Either.Either<CloudEvent, string> => {
  if (row.type !== OrderCreatedType) return Either.left(`no event contract for type ${JSON.stringify(row.type)}`)
  return Schema.decodeUnknownEither(OrderCreatedData)(row.payload).pipe(
    Either.flatMap((data) =>
      Schema.encodeEither(OrderCreatedEvent)({
        specversion: SpecVersion,
        id: row.id,
        source: CheckoutSource,
        type: OrderCreatedType,
        time: row.createdAt.toISOString(),
        datacontenttype: "application/json",
        data
      })
    ),
    Either.mapLeft((e) => `payload does not match the ${row.type} contract: ${ParseResult.TreeFormatter.formatErrorSync(e)}`)
  )
}

/** The JSON Schema files under `contracts/`, by file name, derived from the Schemas above. */
export const eventContracts: ReadonlyArray<{ readonly file: string; readonly schema: JSONSchema.JsonSchema7Root }> = [
  { file: "order.created.schema.json", schema: JSONSchema.make(OrderCreatedEvent) }
]

/** How a contract file is written: 2-space JSON with a final newline. */
export const renderContract = (schema: JSONSchema.JsonSchema7Root): string => `${JSON.stringify(schema, null, 2)}\n`
