import { Schema, Either, BigDecimal } from "effect"
import { UnitPrice, centsToDecimalString, centsToNumber } from "../src/domain/Money.js"
import { CreateOrderRequest } from "../src/domain/Order.js"
import { fieldIssues } from "../src/http/RequestBody.js"
const d = Schema.decodeUnknownEither(UnitPrice)
for (const v of [16.99, 16.990, "16.99", "16.990", 0, -1, "abc", 1.234, "1.234", 1000000.01, "1e3", "NaN", "Infinity", true, 1000000, " 16.99 ", "99999999999999999999", "1000000000000000000000000.00", 1e21, 1e300, 0.1+0.2, 5e-324, "-0", -0, "", "0.1", 1e-7, "00016.99"]) {
  try { const r = d(v); console.log(JSON.stringify(v), Either.isRight(r) ? r.right : "LEFT " + r.left.message.split("\n").slice(-1)[0]) } catch (e) { console.log(JSON.stringify(v), "THROWN", String(e).slice(0, 200)) }
}
console.log(centsToDecimalString(3398), centsToDecimalString(5), centsToDecimalString(0), centsToDecimalString(100000000), centsToDecimalString(1e14), centsToDecimalString(1e16), centsToDecimalString(1e18), centsToNumber(3398))
const dec = Schema.decodeUnknownEither(CreateOrderRequest, { errors: "all", onExcessProperty: "error" })
const A = "11111111-1111-4111-8111-111111111111"
const r = dec({ userId: "u", items: [{ bookId: A, qty: 1, unitPrice: 1 }, { bookId: A.toUpperCase(), qty: 1, unitPrice: 1 }] })
console.log(Either.isRight(r) ? "ACCEPTED upper/lower dup" : fieldIssues(r.left))
const r2 = dec({ userId: "u", items: [{ bookId: A, qty: 1, unitPrice: 1 }, { bookId: A, qty: 1, unitPrice: 1 }] })
console.log(Either.isRight(r2) ? "ACCEPTED" : fieldIssues(r2.left))
const r3 = dec({ userId: "", items: [], extra: 1 })
console.log(Either.isRight(r3) ? "ACCEPTED" : fieldIssues(r3.left))
const r4 = dec({ userId: "u", items: [{ bookId: "x", qty: 0, unitPrice: -1 }, { bookId: A, qty: 1.5, unitPrice: "1.234" }, { bookId: A, qty: "2", unitPrice: 1000000.01 }, { bookId: A, qty: 10001, unitPrice: "abc" }] })
console.log(Either.isRight(r4) ? "ACCEPTED" : fieldIssues(r4.left))
