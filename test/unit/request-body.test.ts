import { HttpServerRequest } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { MAX_BODY_BYTES, MAX_FIELD_ISSUES, readOrderSubmission } from "../../src/http/RequestBody.js"

const A = "289f3439-3a2e-49a9-b447-eb6a95922a20"
const B = "649d8c29-dc58-4eac-87aa-de382b4eb388"

const JSON_TYPE = { "content-type": "application/json" }

/**
 * A `POST /orders` request. A string body is sent as bytes so that `Request` adds no
 * `text/plain` content type of its own: the headers are exactly the ones given.
 */
const post = (body: string | undefined, headers: Record<string, string> = JSON_TYPE) =>
  HttpServerRequest.fromWeb(
    new Request("http://x/orders", {
      method: "POST",
      headers,
      ...(body === undefined ? {} : { body: new TextEncoder().encode(body) })
    })
  )

const validBody = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ userId: "reader-1", items: [{ bookId: A, qty: 2, unitPrice: 16.99 }], ...extra })

const bodyWithItems = (items: ReadonlyArray<unknown>, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ userId: "reader-1", items, ...extra })

const read = (request: HttpServerRequest.HttpServerRequest, requireKey = false) =>
  readOrderSubmission(request, { requireKey })

/** The ValidationError's message and details of a request that must be refused. */
const refusal = (request: HttpServerRequest.HttpServerRequest, requireKey = false) =>
  read(request, requireKey).pipe(
    Effect.flip,
    Effect.map((e) => ({ tag: e._tag, message: e.message, details: e.details }))
  )

const details = (request: HttpServerRequest.HttpServerRequest, requireKey = false) =>
  Effect.map(refusal(request, requireKey), (r) => r.details)

describe("readOrderSubmission: the body", () => {
  it.effect("decodes a valid request: cents, branded ids, no key", () =>
    Effect.gen(function* () {
      const submission = yield* read(post(validBody()))
      expect(submission.request.userId).toBe("reader-1")
      expect(submission.request.items.map((i) => [i.bookId, i.qty, i.unitPrice])).toEqual([[A, 2, 1699]])
      expect(submission.idempotencyKey).toEqual(Option.none())
    }))

  it.effect("refuses a missing body", () =>
    Effect.gen(function* () {
      expect(yield* refusal(post(undefined))).toEqual({
        tag: "ValidationError",
        message: "The body is required",
        details: [{ field: "body", message: "is required" }]
      })
      expect(yield* details(post("  \n "))).toEqual([{ field: "body", message: "is required" }])
    }))

  it.effect("refuses a body that is not JSON", () =>
    Effect.gen(function* () {
      expect(yield* refusal(post("{\"userId\": \"reader-1\","))).toEqual({
        tag: "ValidationError",
        message: "The body is not valid JSON",
        details: [{ field: "body", message: "must be valid JSON" }]
      })
      expect(yield* details(post("userId=reader-1"))).toEqual([{ field: "body", message: "must be valid JSON" }])
    }))

  it.effect("refuses JSON that is not an object (array, null, string, number)", () =>
    Effect.gen(function* () {
      expect(yield* refusal(post(`[${validBody()}]`))).toEqual({
        tag: "ValidationError",
        message: "The body must be a JSON object",
        details: [{ field: "body", message: "must be a JSON object" }]
      })
      for (const body of ["null", "\"order\"", "42", "true"]) {
        expect(yield* details(post(body))).toEqual([{ field: "body", message: "must be a JSON object" }])
      }
    }))

  it.effect("refuses a content type other than JSON, before reading the body", () =>
    Effect.gen(function* () {
      expect(yield* refusal(post(validBody(), { "content-type": "text/plain" }))).toEqual({
        tag: "ValidationError",
        message: "The body must be JSON",
        details: [{ field: "Content-Type", message: "must be application/json, not text/plain" }]
      })
      expect(yield* details(post(validBody(), { "content-type": "application/x-www-form-urlencoded" }))).toEqual([
        { field: "Content-Type", message: "must be application/json, not application/x-www-form-urlencoded" }
      ])
      // `new Request` with a string body adds "text/plain;charset=UTF-8" itself
      const implicit = HttpServerRequest.fromWeb(new Request("http://x/orders", { method: "POST", body: validBody() }))
      expect(yield* details(implicit)).toEqual([{ field: "Content-Type", message: "must be application/json, not text/plain" }])
    }))

  it.effect("refuses a missing content type", () =>
    Effect.gen(function* () {
      expect(yield* details(post(validBody(), {}))).toEqual([
        { field: "Content-Type", message: "is required and must be application/json" }
      ])
    }))

  it.effect("accepts JSON content types with parameters, in any case, and +json types", () =>
    Effect.gen(function* () {
      for (const type of ["application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"]) {
        const submission = yield* read(post(validBody(), { "content-type": type }))
        expect(submission.request.items[0]?.unitPrice).toBe(1699)
      }
    }))

  it.effect("refuses a body declared larger than 64 KiB without reading it", () =>
    Effect.gen(function* () {
      expect(MAX_BODY_BYTES).toBe(65_536)
      expect(yield* refusal(post(validBody(), { ...JSON_TYPE, "content-length": "65537" }))).toEqual({
        tag: "ValidationError",
        message: "The body is too large",
        details: [{ field: "body", message: "must be at most 65536 bytes" }]
      })
    }))

  it.effect("accepts a body of exactly 64 KiB", () =>
    Effect.gen(function* () {
      const body = validBody().padEnd(MAX_BODY_BYTES, " ")
      expect(new TextEncoder().encode(body).byteLength).toBe(MAX_BODY_BYTES)
      const submission = yield* read(post(body, { ...JSON_TYPE, "content-length": String(MAX_BODY_BYTES) }))
      expect(submission.request.userId).toBe("reader-1")
    }))

  it.effect("refuses a body larger than 64 KiB that does not declare its length", () =>
    Effect.gen(function* () {
      const body = validBody().padEnd(MAX_BODY_BYTES + 1, " ")
      expect(yield* refusal(post(body))).toEqual({
        tag: "ValidationError",
        message: "The body is too large",
        details: [{ field: "body", message: "must be at most 65536 bytes" }]
      })
    }))

  it.effect("counts the limit in bytes, not characters", () =>
    Effect.gen(function* () {
      // 33,000 "é" are 33,000 characters but 66,000 bytes of UTF-8: over the limit in bytes only
      const body = JSON.stringify({ userId: "é".repeat(33_000), items: [{ bookId: A, qty: 1, unitPrice: 1 }] })
      expect(body.length).toBeLessThan(MAX_BODY_BYTES)
      expect(yield* details(post(body))).toEqual([{ field: "body", message: "must be at most 65536 bytes" }])
    }))

  it.effect("refuses a body larger than 64 KiB that declares a smaller length", () =>
    Effect.gen(function* () {
      const body = validBody().padEnd(MAX_BODY_BYTES + 1024, " ")
      expect(yield* details(post(body, { ...JSON_TYPE, "content-length": "100" }))).toEqual([
        { field: "body", message: "must be at most 65536 bytes" }
      ])
    }))
})

describe("readOrderSubmission: the fields", () => {
  it.effect.each<[string, string, ReadonlyArray<{ field: string; message: string }>]>([
    ["no items", bodyWithItems([]), [{ field: "items", message: "must have at least 1 line" }]],
    [
      "101 lines",
      bodyWithItems(
        Array.from({ length: 101 }, (_, i) => ({
          bookId: `00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`,
          qty: 1,
          unitPrice: 1
        }))
      ),
      [{ field: "items", message: "must have at most 100 lines" }]
    ],
    ["items missing", JSON.stringify({ userId: "reader-1" }), [{ field: "items", message: "is required" }]],
    ["userId missing", JSON.stringify({ items: [{ bookId: A, qty: 1, unitPrice: 1 }] }), [{ field: "userId", message: "is required" }]],
    ["userId a number", JSON.stringify({ userId: 42, items: [{ bookId: A, qty: 1, unitPrice: 1 }] }), [{ field: "userId", message: "must be a string" }]],
    ["bookId a number", bodyWithItems([{ bookId: 5, qty: 1, unitPrice: 1 }]), [{ field: "items[0].bookId", message: "must be a string" }]],
    ["idempotencyKey a number", JSON.stringify({ userId: "reader-1", idempotencyKey: 7, items: [{ bookId: A, qty: 1, unitPrice: 1 }] }), [{ field: "idempotencyKey", message: "must be a string" }]],
    ["qty 0", bodyWithItems([{ bookId: A, qty: 0, unitPrice: 1 }]), [{ field: "items[0].qty", message: "must be an integer from 1 to 10000" }]],
    ["qty 10001", bodyWithItems([{ bookId: A, qty: 10_001, unitPrice: 1 }]), [{ field: "items[0].qty", message: "must be an integer from 1 to 10000" }]],
    ["qty 1.5", bodyWithItems([{ bookId: A, qty: 1.5, unitPrice: 1 }]), [{ field: "items[0].qty", message: "must be an integer" }]],
    ["qty \"2\"", bodyWithItems([{ bookId: A, qty: "2", unitPrice: 1 }]), [{ field: "items[0].qty", message: "must be an integer" }]],
    ["qty missing", bodyWithItems([{ bookId: A, unitPrice: 1 }]), [{ field: "items[0].qty", message: "is required" }]],
    ["negative price", bodyWithItems([{ bookId: A, qty: 1, unitPrice: -1 }]), [{ field: "items[0].unitPrice", message: "must not be negative" }]],
    [
      "price not a number",
      bodyWithItems([{ bookId: A, qty: 1, unitPrice: "abc" }]),
      [{ field: "items[0].unitPrice", message: "must be a decimal number such as 16.99" }]
    ],
    [
      "price with 3 fraction digits",
      bodyWithItems([{ bookId: A, qty: 1, unitPrice: "1.234" }]),
      [{ field: "items[0].unitPrice", message: "must have at most 2 fraction digits" }]
    ],
    [
      "price above 1,000,000",
      bodyWithItems([{ bookId: A, qty: 1, unitPrice: 1000000.01 }]),
      [{ field: "items[0].unitPrice", message: "must be at most 1000000" }]
    ],
    [
      "price of 10^20 dollars",
      bodyWithItems([{ bookId: A, qty: 1, unitPrice: "99999999999999999999" }]),
      [{ field: "items[0].unitPrice", message: "is too large" }]
    ],
    ["bookId not a UUID", bodyWithItems([{ bookId: "42", qty: 1, unitPrice: 1 }]), [{ field: "items[0].bookId", message: "must be a UUID" }]],
    [
      "same bookId on two lines",
      bodyWithItems([{ bookId: A, qty: 1, unitPrice: 1 }, { bookId: A, qty: 2, unitPrice: 1 }]),
      [{ field: "items[1].bookId", message: "appears on more than one line" }]
    ],
    ["empty userId", JSON.stringify({ userId: "", items: [{ bookId: A, qty: 1, unitPrice: 1 }] }), [{ field: "userId", message: "must not be empty" }]],
    [
      "129-character userId",
      JSON.stringify({ userId: "u".repeat(129), items: [{ bookId: A, qty: 1, unitPrice: 1 }] }),
      [{ field: "userId", message: "must be at most 128 characters" }]
    ],
    [
      "userId with a newline",
      JSON.stringify({ userId: "reader\n1", items: [{ bookId: A, qty: 1, unitPrice: 1 }] }),
      [{ field: "userId", message: "must not contain control, format or invisible characters" }]
    ],
    [
      "userId with NUL",
      JSON.stringify({ userId: "reader\u00001", items: [{ bookId: A, qty: 1, unitPrice: 1 }] }),
      [{ field: "userId", message: "must not contain control, format or invisible characters" }]
    ],
    [
      "unknown field",
      validBody({ couponCode: "FREE" }),
      [{ field: "couponCode", message: "is unexpected, expected: \"userId\" | \"items\" | \"idempotencyKey\"" }]
    ],
    [
      "empty idempotencyKey in the body",
      validBody({ idempotencyKey: "" }),
      [{ field: "idempotencyKey", message: "must not be empty" }]
    ]
  ])("reports %s with its field name", ([_name, body, expected]) =>
    Effect.gen(function* () {
      expect(yield* refusal(post(body))).toEqual({
        tag: "ValidationError",
        message: "The order request is invalid",
        details: expected
      })
    }))

  it.effect("6,000 bad lines: one entry, too many lines, said before any line is decoded", () =>
    Effect.gen(function* () {
      const body = bodyWithItems(Array.from({ length: 6_000 }, () => ({ a: 1 })))
      expect(yield* details(post(body))).toEqual([{ field: "items", message: "must have at most 100 lines" }])
    }))

  it.effect("a body full of bad fields lists the first 50 and counts the rest", () =>
    Effect.gen(function* () {
      const unknown = Object.fromEntries(Array.from({ length: 80 }, (_, i) => [`extra${i}`, i]))
      const listed = yield* details(post(validBody(unknown)))
      expect(listed).toHaveLength(MAX_FIELD_ISSUES + 1)
      expect(listed[0]).toEqual({ field: "extra0", message: "is unexpected, expected: \"userId\" | \"items\" | \"idempotencyKey\"" })
      expect(listed[MAX_FIELD_ISSUES]).toEqual({ field: "body", message: "has 30 more invalid fields" })
    }))

  it.effect("reports every bad field at once, one entry per field", () =>
    Effect.gen(function* () {
      const body = JSON.stringify({
        userId: "",
        items: [
          { bookId: "not-a-uuid", qty: 0, unitPrice: -1 },
          { bookId: B, qty: 1.5, unitPrice: "1.234", gift: true },
          { bookId: B, qty: 1, unitPrice: 1 }
        ],
        note: "leave at the door"
      })
      expect(yield* details(post(body))).toEqual([
        { field: "note", message: "is unexpected, expected: \"userId\" | \"items\" | \"idempotencyKey\"" },
        { field: "userId", message: "must not be empty" },
        { field: "items[0].bookId", message: "must be a UUID" },
        { field: "items[0].qty", message: "must be an integer from 1 to 10000" },
        { field: "items[0].unitPrice", message: "must not be negative" },
        { field: "items[1].gift", message: "is unexpected, expected: \"bookId\" | \"qty\" | \"unitPrice\"" },
        { field: "items[1].qty", message: "must be an integer" },
        { field: "items[1].unitPrice", message: "must have at most 2 fraction digits" }
      ])
    }))
})

describe("readOrderSubmission: the idempotency key", () => {
  const withKey = (key: string, extra: Record<string, string> = {}) => ({ ...JSON_TYPE, "idempotency-key": key, ...extra })

  it.effect("refuses an empty Idempotency-Key header", () =>
    Effect.gen(function* () {
      expect(yield* refusal(post(validBody(), withKey("")))).toEqual({
        tag: "ValidationError",
        message: "The Idempotency-Key header is invalid",
        details: [{ field: "Idempotency-Key", message: "must not be empty" }]
      })
    }))

  it.effect("refuses a 256-character Idempotency-Key header, accepts 255", () =>
    Effect.gen(function* () {
      expect(yield* details(post(validBody(), withKey("k".repeat(256))))).toEqual([
        { field: "Idempotency-Key", message: "must be at most 255 characters" }
      ])
      const submission = yield* read(post(validBody(), withKey("k".repeat(255))))
      expect(submission.idempotencyKey).toEqual(Option.some("k".repeat(255)))
    }))

  it.effect("refuses an Idempotency-Key header with a control character", () =>
    Effect.gen(function* () {
      expect(yield* details(post(validBody(), withKey("a\tb")))).toEqual([
        { field: "Idempotency-Key", message: "must be printable ASCII characters" }
      ])
    }))

  it.effect("refuses a header and a body key that differ", () =>
    Effect.gen(function* () {
      expect(yield* refusal(post(validBody({ idempotencyKey: "body-key" }), withKey("header-key")))).toEqual({
        tag: "ValidationError",
        message: "Two different idempotency keys were given",
        details: [{ field: "idempotencyKey", message: "differs from the Idempotency-Key header" }]
      })
    }))

  it.effect("accepts a header and a body key that are equal", () =>
    Effect.gen(function* () {
      const submission = yield* read(post(validBody({ idempotencyKey: "same-key" }), withKey("same-key")))
      expect(submission.idempotencyKey).toEqual(Option.some("same-key"))
      expect(submission.request.idempotencyKey).toBe("same-key")
    }))

  it.effect("takes the key from the header alone", () =>
    Effect.gen(function* () {
      const submission = yield* read(post(validBody(), withKey("header-only")))
      expect(submission.idempotencyKey).toEqual(Option.some("header-only"))
      expect(submission.request.idempotencyKey).toBeUndefined()
    }))

  it.effect("takes the key from the body alone", () =>
    Effect.gen(function* () {
      const submission = yield* read(post(validBody({ idempotencyKey: "body-only" })))
      expect(submission.idempotencyKey).toEqual(Option.some("body-only"))
    }))

  it.effect("REQUIRE_IDEMPOTENCY_KEY: without a key, refused when required and accepted when not", () =>
    Effect.gen(function* () {
      expect(yield* refusal(post(validBody()), true)).toEqual({
        tag: "ValidationError",
        message: "An idempotency key is required",
        details: [{ field: "Idempotency-Key", message: "is required" }]
      })
      const optional = yield* read(post(validBody()), false)
      expect(optional.idempotencyKey).toEqual(Option.none())
    }))

  it.effect("REQUIRE_IDEMPOTENCY_KEY: a key in the header or in the body satisfies it", () =>
    Effect.gen(function* () {
      const fromHeader = yield* read(post(validBody(), withKey("h-1")), true)
      expect(fromHeader.idempotencyKey).toEqual(Option.some("h-1"))
      const fromBody = yield* read(post(validBody({ idempotencyKey: "b-1" })), true)
      expect(fromBody.idempotencyKey).toEqual(Option.some("b-1"))
    }))

  it.effect("reports the body's problems before the header's", () =>
    Effect.gen(function* () {
      const body = bodyWithItems([{ bookId: A, qty: 0, unitPrice: 1 }])
      expect(yield* details(post(body, withKey("")), true)).toEqual([
        { field: "items[0].qty", message: "must be an integer from 1 to 10000" }
      ])
    }))
})
