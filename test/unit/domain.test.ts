import { createHash } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Either, FastCheck, ParseResult, Schema } from "effect"
import { canonicalJson, fingerprint } from "../../src/domain/Fingerprint.js"
import { BookId, IdempotencyKey, UserId } from "../../src/domain/Ids.js"
import {
  Amount,
  centsToDecimalString,
  centsToNumber,
  decimalToCents,
  MAX_UNIT_PRICE_CENTS,
  UnitPrice
} from "../../src/domain/Money.js"
import { CreateOrderRequest, encodeOrder, Order, OrderLineRequest, priceLines } from "../../src/domain/Order.js"

const A = "289f3439-3a2e-49a9-b447-eb6a95922a20"
const B = "649d8c29-dc58-4eac-87aa-de382b4eb388"
const C = "6b96d9f3-7091-4e87-8c64-347f666c9556"

const decodePrice = Schema.decodeUnknownEither(UnitPrice)
const decodeRequest = Schema.decodeUnknownEither(CreateOrderRequest, { errors: "all", onExcessProperty: "error" })
const decodeRequestSync = Schema.decodeUnknownSync(CreateOrderRequest, { onExcessProperty: "error" })
const encodeRequest = Schema.encodeSync(CreateOrderRequest)

/** The decoded value, or the test fails with the parse error. */
const right = <A>(result: Either.Either<A, ParseResult.ParseError>): A =>
  Either.getOrThrowWith(result, (error) => new Error(`expected a success, got:\n${error.message}`))

/** Each issue of a failed decode as `path: message`, in the order the decoder reports them. */
const issues = (result: Either.Either<unknown, ParseResult.ParseError>): ReadonlyArray<string> =>
  Either.match(result, {
    onRight: () => ["<decoded>"],
    onLeft: (error) =>
      ParseResult.ArrayFormatter.formatErrorSync(error).map((i) => `${i.path.map(String).join(".")}: ${i.message}`)
  })

/** The message of a failed unit price decode (the innermost line of the tree). */
const priceProblem = (input: unknown): string =>
  Either.match(decodePrice(input), {
    onRight: (cents) => `decoded to ${cents}`,
    onLeft: (error) => ParseResult.ArrayFormatter.formatErrorSync(error).map((i) => i.message).join("; ")
  })

/** Cents as the domain holds them (the branded type side of `UnitPrice`). */
const domainCents = (n: number) => right(Schema.decodeUnknownEither(Schema.typeSchema(UnitPrice))(n))
const bigDecimal = (s: string) => right(Schema.decodeUnknownEither(Schema.BigDecimal)(s))

const line = (bookId: string, qty: unknown, unitPrice: unknown) => ({ bookId, qty, unitPrice })
const request = (items: ReadonlyArray<unknown>, extra: Record<string, unknown> = {}) => ({
  userId: "reader-1",
  items,
  ...extra
})

/** A distinct valid UUID per index (v4 layout). */
const uuidAt = (i: number): string => `00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`

describe("Money: UnitPrice", () => {
  it.each([
    [16.99, 1699],
    [16.990, 1699],
    ["16.99", 1699],
    ["16.990", 1699],
    ["16.9", 1690],
    [0, 0],
    ["0", 0],
    ["0.00", 0],
    [0.1, 10],
    ["0.01", 1],
    [1000000, 100_000_000],
    ["1000000.00", 100_000_000],
    [999999.99, 99_999_999]
  ])("decodes %j to %i cents", (input, cents) => {
    expect(right(decodePrice(input))).toBe(cents)
  })

  it.each([
    [-1, "must not be negative"],
    [-0.01, "must not be negative"],
    ["-1", "must be a decimal number such as 16.99"],
    ["abc", "must be a decimal number such as 16.99"],
    ["", "must be a decimal number such as 16.99"],
    ["1e3", "must be a decimal number such as 16.99"],
    ["NaN", "must be a decimal number such as 16.99"],
    ["Infinity", "must be a decimal number such as 16.99"],
    ["16,99", "must be a decimal number such as 16.99"],
    [".5", "must be a decimal number such as 16.99"],
    [Number.NaN, "must be a decimal number such as 16.99"],
    [Number.POSITIVE_INFINITY, "must be a decimal number such as 16.99"],
    [1.234, "must have at most 2 fraction digits"],
    ["1.234", "must have at most 2 fraction digits"],
    [0.1 + 0.2, "must have at most 2 fraction digits"],
    [1000000.01, "must be at most 1000000"],
    ["1000000.01", "must be at most 1000000"],
    [2000000, "must be at most 1000000"]
  ])("rejects %j: %s", (input, message) => {
    expect(priceProblem(input)).toBe(message)
  })

  it("rejects values that are not a number or a string", () => {
    expect(Either.isLeft(decodePrice(true))).toBe(true)
    expect(Either.isLeft(decodePrice(null))).toBe(true)
    expect(Either.isLeft(decodePrice({ amount: 1 }))).toBe(true)
    expect(Either.isLeft(decodePrice(undefined))).toBe(true)
  })

  it("rejects amounts far beyond the maximum as bad input instead of throwing", () => {
    // 10^20 dollars is 10^22 cents: not a safe integer, so it must not even reach Cents.make
    for (const input of ["99999999999999999999", "1000000000000000000000000.00", 1e21, 1e300]) {
      expect(() => decodePrice(input), `decoding ${String(input)}`).not.toThrow()
      expect(priceProblem(input)).toBe("is too large")
    }
    expect(decimalToCents(bigDecimal("90071992547409.91"))).toEqual(Either.right(Number.MAX_SAFE_INTEGER))
    expect(decimalToCents(bigDecimal("90071992547409.92"))).toEqual(Either.left("is too large"))
  })

  it("encodes cents back to the JSON number of the API", () => {
    expect(Schema.encodeSync(UnitPrice)(domainCents(1699))).toBe(16.99)
    expect(Schema.encodeSync(Amount)(domainCents(3398))).toBe(33.98)
    expect(Schema.decodeUnknownSync(Amount)(34.28)).toBe(3428)
    expect(Either.isLeft(Schema.decodeUnknownEither(Amount)(34.281))).toBe(true)
  })

  it("decimalToCents refuses a third fraction digit that is not zero", () => {
    expect(Either.isLeft(decimalToCents(bigDecimal("16.999")))).toBe(true)
    expect(decimalToCents(bigDecimal("16.990"))).toEqual(Either.right(1699))
  })
})

describe("Money: formatting cents", () => {
  it("centsToNumber gives the exact JSON number", () => {
    expect(centsToNumber(3398)).toBe(33.98)
    expect(centsToNumber(1699)).toBe(16.99)
    expect(centsToNumber(30)).toBe(0.3)
    expect(centsToNumber(1)).toBe(0.01)
    expect(centsToNumber(0)).toBe(0)
    expect(centsToNumber(100_000_000)).toBe(1000000)
    expect(centsToNumber(1_000_000_000_000)).toBe(10_000_000_000)
  })

  it("centsToDecimalString has exactly 2 fraction digits", () => {
    expect(centsToDecimalString(3398)).toBe("33.98")
    expect(centsToDecimalString(1699)).toBe("16.99")
    expect(centsToDecimalString(1690)).toBe("16.90")
    expect(centsToDecimalString(1000)).toBe("10.00")
    expect(centsToDecimalString(5)).toBe("0.05")
    expect(centsToDecimalString(10)).toBe("0.10")
    expect(centsToDecimalString(0)).toBe("0.00")
    expect(centsToDecimalString(100_000_000)).toBe("1000000.00")
    expect(centsToDecimalString(100_000_000_000_000)).toBe("1000000000000.00")
  })
})

describe("Order: priceLines", () => {
  const lines = (items: ReadonlyArray<unknown>) => decodeRequestSync(request(items)).items

  it("3 x 0.10 is exactly 30 cents (no float drift)", () => {
    const priced = priceLines(lines([line(A, 3, 0.1)]))
    expect(priced.total).toBe(30)
    expect(priced.items.map((i) => [i.qty, i.unitPrice, i.lineTotal])).toEqual([[3, 10, 30]])
    expect(centsToNumber(priced.total)).toBe(0.3)
  })

  it("sums lines exactly: 2 x 16.99 + 3 x 0.10 = 34.28", () => {
    const priced = priceLines(lines([line(A, 2, 16.99), line(B, 3, "0.10")]))
    expect(priced.items.map((i) => i.lineTotal)).toEqual([3398, 30])
    expect(priced.total).toBe(3428)
    expect(centsToNumber(priced.total)).toBe(34.28)
  })

  it("is exact for the largest line: 10000 x 1000000.00", () => {
    const priced = priceLines(lines([line(A, 10_000, "1000000.00")]))
    expect(priced.items[0]?.lineTotal).toBe(1_000_000_000_000)
    expect(priced.total).toBe(1_000_000_000_000)
    expect(centsToDecimalString(priced.total)).toBe("10000000000.00")
  })

  it("is exact for the largest order: 100 lines x 10000 x 999999.99", () => {
    const priced = priceLines(lines(Array.from({ length: 100 }, (_, i) => line(uuidAt(i), 10_000, "999999.99"))))
    expect(priced.total).toBe(99_999_999_000_000) // 100 * 10000 * 99999999 cents
    expect(Number.isSafeInteger(priced.total)).toBe(true)
    expect(centsToDecimalString(priced.total)).toBe("999999990000.00")
  })
})

describe("Fingerprint", () => {
  const expectedFingerprint = (canonicalJson: string) => createHash("sha256").update(canonicalJson).digest("hex")
  const fromJson = (json: string) => decodeRequestSync(JSON.parse(json))

  it("is the SHA-256 of the canonical JSON of the decoded request", () => {
    const value = fingerprint(fromJson(`{"userId":"reader-1","items":[{"bookId":"${A}","qty":2,"unitPrice":16.99}]}`))
    expect(value).toMatch(/^[0-9a-f]{64}$/)
    expect(value).toBe(
      expectedFingerprint(`{"items":[{"bookId":"${A}","qty":2,"unitPrice":"16.99"}],"userId":"reader-1"}`)
    )
  })

  it("ignores key order, whitespace, number spelling, id case and the idempotency key", () => {
    const base = fingerprint(
      fromJson(`{"userId":"reader-1","items":[{"bookId":"${A}","qty":2,"unitPrice":16.99},{"bookId":"${B}","qty":1,"unitPrice":10}]}`)
    )
    const respelled = fingerprint(
      fromJson(`{
        "items": [
          { "unitPrice": "16.990", "qty": 2.0, "bookId": "${A.toUpperCase()}" },
          { "qty": 1, "unitPrice": "10.00", "bookId": "${B}" }
        ],
        "idempotencyKey": "k-1",
        "userId": "reader-1"
      }`)
    )
    const otherKey = fingerprint(
      fromJson(`{"userId":"reader-1","idempotencyKey":"k-2","items":[{"bookId":"${A}","qty":2,"unitPrice":"16.99"},{"bookId":"${B}","qty":1,"unitPrice":1e1}]}`)
    )
    expect(respelled).toBe(base)
    expect(otherKey).toBe(base)
  })

  it("differs for another qty, user, price or line order", () => {
    const of = (userId: string, items: ReadonlyArray<unknown>) => fingerprint(decodeRequestSync({ userId, items }))
    const base = of("reader-1", [line(A, 2, 16.99), line(B, 1, 10)])
    const variants = [
      of("reader-1", [line(A, 3, 16.99), line(B, 1, 10)]),
      of("reader-2", [line(A, 2, 16.99), line(B, 1, 10)]),
      of("reader-1", [line(A, 2, 16.98), line(B, 1, 10)]),
      of("reader-1", [line(B, 1, 10), line(A, 2, 16.99)]),
      of("reader-1", [line(A, 2, 16.99)]),
      of("reader-1", [line(A, 2, 16.99), line(C, 1, 10)])
    ]
    for (const variant of variants) {
      expect(variant).toMatch(/^[0-9a-f]{64}$/)
      expect(variant).not.toBe(base)
    }
    expect(new Set(variants).size).toBe(variants.length)
  })
})

describe("CreateOrderRequest decoding", () => {
  const valid = request([line(A, 2, 16.99), line(B, 1, "10.50")], { idempotencyKey: "key-1" })

  it("decodes a valid request to cents and branded ids", () => {
    const decoded = right(decodeRequest(valid))
    expect(decoded).toBeInstanceOf(CreateOrderRequest)
    expect(decoded.userId).toBe("reader-1")
    expect(decoded.idempotencyKey).toBe("key-1")
    expect(decoded.items.map((i) => [i.bookId, i.qty, i.unitPrice])).toEqual([
      [A, 2, 1699],
      [B, 1, 1050]
    ])
    expect(decoded.items[0]).toBeInstanceOf(OrderLineRequest)
  })

  it("accepts the bounds: 1 and 100 lines, qty 1 and 10000, a 128-character user", () => {
    expect(Either.isRight(decodeRequest(request([line(A, 1, 0)])))).toBe(true)
    expect(Either.isRight(decodeRequest(request([line(A, 10_000, 1000000)])))).toBe(true)
    const hundred = Array.from({ length: 100 }, (_, i) => line(uuidAt(i), 1, 1))
    expect(right(decodeRequest(request(hundred))).items).toHaveLength(100)
    expect(Either.isRight(decodeRequest({ userId: "u".repeat(128), items: [line(A, 1, 1)] }))).toBe(true)
  })

  it.each<[string, unknown, ReadonlyArray<string>]>([
    ["no items", request([]), ["items: must have at least 1 line"]],
    [
      "101 lines",
      request(Array.from({ length: 101 }, (_, i) => line(uuidAt(i), 1, 1))),
      ["items: must have at most 100 lines"]
    ],
    ["items missing", { userId: "reader-1" }, ["items: is missing"]],
    ["qty 0", request([line(A, 0, 1)]), ["items.0.qty: must be an integer from 1 to 10000"]],
    ["qty 10001", request([line(A, 10_001, 1)]), ["items.0.qty: must be an integer from 1 to 10000"]],
    ["qty 1.5", request([line(A, 1.5, 1)]), ["items.0.qty: must be an integer"]],
    ["qty \"2\"", request([line(A, "2", 1)]), ["items.0.qty: must be an integer"]],
    ["negative price", request([line(A, 1, -5)]), ["items.0.unitPrice: must not be negative"]],
    [
      "price not a number",
      request([line(A, 1, "free")]),
      ["items.0.unitPrice: must be a decimal number such as 16.99"]
    ],
    [
      "price with 3 fraction digits",
      request([line(A, 1, 16.999)]),
      ["items.0.unitPrice: must have at most 2 fraction digits"]
    ],
    ["price above 1,000,000", request([line(A, 1, 1000000.01)]), ["items.0.unitPrice: must be at most 1000000"]],
    ["bookId not a UUID", request([line("book-1", 1, 1)]), ["items.0.bookId: must be a UUID"]],
    [
      "same bookId on two lines",
      request([line(A, 1, 1), line(B, 1, 1), line(A, 2, 1)]),
      ["items.2.bookId: appears on more than one line"]
    ],
    [
      "same bookId on two lines, spelled in another case",
      request([line(A, 1, 1), line(A.toUpperCase(), 1, 1)]),
      ["items.1.bookId: appears on more than one line"]
    ],
    ["empty userId", { userId: "", items: [line(A, 1, 1)] }, ["userId: must not be empty"]],
    ["129-character userId", { userId: "u".repeat(129), items: [line(A, 1, 1)] }, ["userId: must be at most 128 characters"]],
    ["userId with a newline", { userId: "reader\n1", items: [line(A, 1, 1)] }, ["userId: must not contain control, format or invisible characters"]],
    ["userId with NUL", { userId: "reader\u00001", items: [line(A, 1, 1)] }, ["userId: must not contain control, format or invisible characters"]],
    ["empty idempotencyKey", request([line(A, 1, 1)], { idempotencyKey: "" }), [
      "idempotencyKey: must not be empty",
      "idempotencyKey: Expected undefined, actual \"\""
    ]],
    [
      "unknown top-level field",
      request([line(A, 1, 1)], { coupon: "FREE" }),
      ["coupon: is unexpected, expected: \"userId\" | \"items\" | \"idempotencyKey\""]
    ],
    [
      "unknown line field",
      request([{ ...line(A, 1, 1), discount: 5 }]),
      ["items.0.discount: is unexpected, expected: \"bookId\" | \"qty\" | \"unitPrice\""]
    ]
  ])("rejects %s", (_name, input, expected) => {
    expect(issues(decodeRequest(input))).toEqual(expected)
  })

  it("reports every bad field at once", () => {
    const result = decodeRequest({
      userId: "",
      items: [line("x", 0, -1), line(A, 1.5, "1.234")],
      extra: true
    })
    expect(issues(result)).toEqual([
      "extra: is unexpected, expected: \"userId\" | \"items\" | \"idempotencyKey\"",
      "userId: must not be empty",
      "items.0.bookId: must be a UUID",
      "items.0.qty: must be an integer from 1 to 10000",
      "items.0.unitPrice: must not be negative",
      "items.1.qty: must be an integer",
      "items.1.unitPrice: must have at most 2 fraction digits"
    ])
  })
})

describe("properties", () => {
  /** A valid wire request: distinct books (by canonical id), prices as cents to be spelled in several ways. */
  const wireRequest = FastCheck.record({
    userId: Arbitrary.make(UserId),
    lines: FastCheck.uniqueArray(
      FastCheck.record({
        bookId: Arbitrary.make(BookId),
        qty: FastCheck.integer({ min: 1, max: 10_000 }),
        cents: FastCheck.integer({ min: 0, max: MAX_UNIT_PRICE_CENTS }),
        spelling: FastCheck.constantFrom("number", "string", "padded", "upper")
      }),
      { minLength: 1, maxLength: 20, selector: (l) => l.bookId.toLowerCase() }
    ),
    idempotencyKey: FastCheck.option(
      FastCheck.stringMatching(/^[\x21-\x7e]([\x20-\x7e]{0,18}[\x21-\x7e])?$/),
      { nil: undefined }
    )
  })

  const spell = (cents: number, spelling: string): number | string => {
    switch (spelling) {
      case "number":
        return centsToNumber(cents)
      case "string":
        return centsToDecimalString(cents)
      default:
        return `${centsToDecimalString(cents)}0`
    }
  }

  it.prop("a valid request keeps its fingerprint when re-encoded and decoded, however it was spelled", [wireRequest], ([wire]) => {
    const json = {
      userId: wire.userId,
      items: wire.lines.map((l) =>
        line(l.spelling === "upper" ? l.bookId.toUpperCase() : l.bookId, l.qty, spell(l.cents, l.spelling))
      ),
      ...(wire.idempotencyKey === undefined ? {} : { idempotencyKey: wire.idempotencyKey })
    }
    const decoded = right(decodeRequest(json))
    expect(decoded.items.map((i) => i.unitPrice)).toEqual(wire.lines.map((l) => l.cents))
    const roundTripped = right(decodeRequest(JSON.parse(JSON.stringify(encodeRequest(decoded)))))
    expect(fingerprint(roundTripped)).toBe(fingerprint(decoded))
    // the canonical spelling (plain numbers, lower-case ids, no key) has the same fingerprint
    const canonical = right(
      decodeRequest({
        userId: wire.userId,
        items: wire.lines.map((l) => line(l.bookId.toLowerCase(), l.qty, centsToNumber(l.cents)))
      })
    )
    expect(fingerprint(canonical)).toBe(fingerprint(decoded))
  })

  it.prop("encodeOrder writes an order exactly as the Order schema encodes it, key for key", [Arbitrary.make(Order)], ([order]) => {
    const bySchema = Schema.encodeSync(Order)(order)
    expect(encodeOrder(order)).toStrictEqual(bySchema)
    // the same JSON text: what is stored for a key's replay and sent as the response
    expect(JSON.stringify(encodeOrder(order))).toBe(JSON.stringify(bySchema))
  })

  it.prop(
    "any price in range round-trips through its decimal string and its JSON number",
    { cents: FastCheck.integer({ min: 0, max: MAX_UNIT_PRICE_CENTS }) },
    ({ cents }) => {
      const text = centsToDecimalString(cents)
      expect(text).toMatch(/^\d+\.\d{2}$/)
      expect(right(decodePrice(text))).toBe(cents)
      expect(right(decodePrice(centsToNumber(cents)))).toBe(cents)
    }
  )

  it.prop(
    "a price above the maximum is always rejected",
    { cents: FastCheck.integer({ min: MAX_UNIT_PRICE_CENTS + 1, max: Number.MAX_SAFE_INTEGER }) },
    ({ cents }) => {
      expect(priceProblem(centsToDecimalString(cents))).toBe("must be at most 1000000")
    }
  )
})

describe("canonicalJson (RFC 8785)", () => {
  it("sorts keys by UTF-16 code units, drops whitespace, writes numbers as ECMAScript does", () => {
    expect(canonicalJson({ b: 1, a: [true, null, "x"], "\u20ac": 1e21, "\ud83d\ude00": 0.000001, A: -0 })).toBe(
      '{"A":0,"a":[true,null,"x"],"b":1,"\u20ac":1e+21,"\ud83d\ude00":0.000001}'
    )
    expect(canonicalJson({ s: "é\n\u0001" })).toBe('{"s":"é\\n\\u0001"}')
    expect(() => canonicalJson(Number.NaN)).toThrow(RangeError)
  })
})

describe("identifiers a hostile client might send", () => {
  const decodeUser = Schema.decodeUnknownEither(UserId)
  const decodeKey = Schema.decodeUnknownEither(IdempotencyKey)
  it("counts userId length in characters, not UTF-16 units", () => {
    expect(Either.isRight(decodeUser("😀".repeat(128)))).toBe(true)
    expect(Either.isLeft(decodeUser("😀".repeat(129)))).toBe(true)
  })
  it("rejects invisible, format and broken userIds", () => {
    for (const bad of [" ", "\u200b", "\u202eadmin", "\ufeff", "a\u2028b", "x\ud800", "a\u0085"]) {
      expect({ bad, ok: Either.isRight(decodeUser(bad)) }).toEqual({ bad, ok: false })
    }
    expect(Either.isRight(decodeUser("Zoë-読者 42"))).toBe(true)
  })
  it("allows only printable ASCII idempotency keys without outer spaces (a header and a body key must read alike)", () => {
    for (const bad of ["ключ-3", "abc ", " abc", "a\u0085", "tab\there"]) {
      expect({ bad, ok: Either.isRight(decodeKey(bad)) }).toEqual({ bad, ok: false })
    }
    expect(Either.isRight(decodeKey("order 42/retry:1"))).toBe(true)
  })
  it("decodes a book id in any case to lower case", () => {
    const decoded = Schema.decodeUnknownSync(CreateOrderRequest)({
      userId: "u",
      items: [{ bookId: "ABCDEF12-3456-4789-8ABC-DEF123456789", qty: 1, unitPrice: 1 }]
    })
    expect(decoded.items[0]?.bookId).toBe("abcdef12-3456-4789-8abc-def123456789")
  })
})
