import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { eventContracts, renderContract, toCloudEvent } from "../../src/domain/Events.js"
import { BookId, OrderId } from "../../src/domain/Ids.js"
import { Cents } from "../../src/domain/Money.js"
import { Order, OrderItem } from "../../src/domain/Order.js"
import { orderCreatedData } from "../../src/services/Checkout.js"
import { contractText, contractValidator } from "../support/contract.js"

const order = Order.make({
  orderId: OrderId.make("0b4c2a8e-5f7d-4e0a-9d43-2f1e7c9a6b15"),
  status: "CONFIRMED",
  total: Cents.make(3428),
  currency: "USD",
  items: [
    OrderItem.make({
      bookId: BookId.make("11111111-1111-4111-8111-111111111111"),
      qty: 2,
      unitPrice: Cents.make(1699),
      lineTotal: Cents.make(3398)
    }),
    OrderItem.make({
      bookId: BookId.make("22222222-2222-4222-8222-222222222222"),
      qty: 3,
      unitPrice: Cents.make(10),
      lineTotal: Cents.make(30)
    })
  ],
  createdAt: new Date("2026-11-29T12:00:00.000Z")
})

const event = (payload: unknown) =>
  toCloudEvent({ id: "7d1f3c0e-2b6a-4f49-a1f4-5c3e9b8d2a71", type: "order.created", createdAt: order.createdAt, payload })

describe("event contracts", () => {
  it.each(eventContracts.map((c) => [c.file, c] as const))(
    "contracts/%s is what `npm run schemas` writes from the Schema (run it after changing src/domain/Events.ts)",
    (file, contract) => {
      expect(contractText(file)).toBe(renderContract(contract.schema))
    }
  )

  it("the event of the saga's own payload is valid per contracts/order.created.schema.json", () => {
    const validate = contractValidator("order.created.schema.json")
    const wire = event(orderCreatedData(order, "reader-1"))
    expect(Either.isRight(wire)).toBe(true)
    const json = JSON.parse(JSON.stringify(Either.getOrThrow(wire)))
    expect(json).toEqual({
      specversion: "1.0",
      id: "7d1f3c0e-2b6a-4f49-a1f4-5c3e9b8d2a71",
      source: "bookverse-checkout",
      type: "order.created",
      time: "2026-11-29T12:00:00.000Z",
      datacontenttype: "application/json",
      data: {
        orderId: "0b4c2a8e-5f7d-4e0a-9d43-2f1e7c9a6b15",
        userId: "reader-1",
        total: 34.28,
        currency: "USD",
        items: [
          { bookId: "11111111-1111-4111-8111-111111111111", qty: 2, unitPrice: 16.99, lineTotal: 33.98 },
          { bookId: "22222222-2222-4222-8222-222222222222", qty: 3, unitPrice: 0.1, lineTotal: 0.3 }
        ],
        createdAt: "2026-11-29T12:00:00.000Z"
      }
    })
    expect(validate(json), JSON.stringify(validate.errors)).toBe(true)
  })

  it("the schema file rejects what a consumer must not accept", () => {
    const validate = contractValidator("order.created.schema.json")
    const good = JSON.parse(JSON.stringify(Either.getOrThrow(event(orderCreatedData(order, "reader-1")))))
    const broken: Array<[string, unknown]> = [
      ["no id", { ...good, id: undefined }],
      ["another specversion", { ...good, specversion: "0.3" }],
      ["another source", { ...good, source: "somewhere-else" }],
      ["a time without zone", { ...good, time: "2026-11-29T12:00:00" }],
      ["a string total", { ...good, data: { ...good.data, total: "34.28" } }],
      ["no lines", { ...good, data: { ...good.data, items: [] } }],
      ["qty 0", { ...good, data: { ...good.data, items: [{ ...good.data.items[0], qty: 0 }] } }],
      ["an order id that is no UUID", { ...good, data: { ...good.data, orderId: "42" } }],
      ["an unknown field", { ...good, extra: true }]
    ]
    for (const [what, candidate] of broken) {
      expect(validate(JSON.parse(JSON.stringify(candidate))), what).toBe(false)
    }
  })
})
