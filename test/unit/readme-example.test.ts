// The README's "Testing with checkout's Layers" example, kept compiling and passing.
import { expect, it } from "@effect/vitest"
import { Effect, Option, Schema } from "effect"
import { Checkout, CreateOrderRequest, InMemoryInventory, testCheckoutLayer } from "bookverse-checkout/testing"

const book = "11111111-1111-4111-8111-111111111111"
it.effect("takes stock and confirms", () =>
  Effect.gen(function* () {
    const request = Schema.decodeUnknownSync(CreateOrderRequest)({ userId: "u1", items: [{ bookId: book, qty: 2, unitPrice: 9.99 }] })
    const placed = yield* (yield* Checkout).placeOrder(request, Option.some("key-1"))
    expect(placed.order.status).toBe("CONFIRMED")
    expect(yield* (yield* InMemoryInventory).stockOf(book)).toBe(3)
  }).pipe(Effect.provide(testCheckoutLayer({ stock: { [book]: 5 }, payments: ["approve"] }))))
