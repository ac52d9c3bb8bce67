import { Schema, Either } from "effect"
import { CreateOrderRequest } from "../src/domain/Order.js"
import { fingerprint } from "../src/domain/Fingerprint.js"
import { centsToDecimalString } from "../src/domain/Money.js"
const dec = Schema.decodeUnknownEither(CreateOrderRequest, { errors: "all", onExcessProperty: "error" })
const A = "aaaaaaaa-1111-4111-8111-111111111111"
const r = dec({ userId: "u", items: [{ bookId: A, qty: 1, unitPrice: 1 }, { bookId: A.toUpperCase(), qty: 1, unitPrice: 1 }] })
console.log(Either.isRight(r) ? "ACCEPTED upper/lower dup" : "rejected")
const x = Schema.decodeUnknownSync(CreateOrderRequest)({ userId: "u", items: [{ bookId: A, qty: 1, unitPrice: 1 }] })
const y = Schema.decodeUnknownSync(CreateOrderRequest)({ userId: "u", items: [{ bookId: A.toUpperCase(), qty: 1, unitPrice: 1 }] })
console.log(fingerprint(x) === fingerprint(y), y.items[0]!.bookId)
console.log([1690, 1000, 100, 1, 10].map(centsToDecimalString))
