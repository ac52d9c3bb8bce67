import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { connect } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeContext } from "@effect/platform-node"
import { ConfigProvider, Effect, Schema } from "effect"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import {
  demoCatalog,
  fakeInventoryOptionsFromEnv,
  type FakeInventoryOptions,
  startFakeInventory,
  type StartedFakeInventory
} from "../../src/fake-inventory/index.js"

// Demo catalog books used below (fixed ids, see src/fake-inventory/Catalog.ts).
const pride = "289f3439-3a2e-49a9-b447-eb6a95922a20" // 12 copies, "16.99"
const wuthering = "545c1bc8-ca55-4b3a-a908-ebc4cef32629" // 1 copy
const frankenstein = "6b96d9f3-7091-4e87-8c64-347f666c9556" // 25 available of 30
const unknownBook = "0f6f3a52-5d7e-4c55-9a0e-3c1d2b4a5e6f"

// The contract's shapes (INVENTORY_CONTRACT.md), written here independently of the fake's own
// types: decoding a body with them is itself an assertion on the wire format.
const naiveTimestamp = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?$/
const Timestamp = Schema.String.pipe(Schema.pattern(naiveTimestamp))
const Pagination = Schema.Struct({
  total: Schema.Int,
  page: Schema.Int,
  per_page: Schema.Int,
  pages: Schema.Int,
  has_next: Schema.Boolean,
  has_prev: Schema.Boolean
})
const Stock = Schema.Struct({
  inventory: Schema.Struct({
    id: Schema.UUID,
    book_id: Schema.UUID,
    quantity_available: Schema.Int,
    quantity_total: Schema.Int,
    reorder_point: Schema.Int,
    created_at: Timestamp,
    updated_at: Timestamp
  }),
  book: Schema.Struct({
    id: Schema.UUID,
    title: Schema.String,
    subtitle: Schema.NullOr(Schema.String),
    authors: Schema.Array(Schema.String),
    genres: Schema.Array(Schema.String),
    description: Schema.String,
    price: Schema.String, // a decimal as a JSON string
    cover_image_url: Schema.String,
    rating: Schema.NullOr(Schema.Number),
    created_at: Timestamp,
    updated_at: Timestamp,
    is_active: Schema.Boolean
  })
})
const Transaction = Schema.Struct({
  id: Schema.UUID,
  book_id: Schema.UUID,
  transaction_type: Schema.Literal("stock_out", "stock_in", "adjustment"),
  quantity_change: Schema.Int,
  notes: Schema.NullOr(Schema.String),
  timestamp: Timestamp
})
const Transactions = Schema.Struct({ transactions: Schema.Array(Transaction), pagination: Pagination })
const InventoryList = Schema.Struct({ items: Schema.Array(Stock), pagination: Pagination })
const Detail = Schema.Struct({ detail: Schema.String })
const FieldErrors = Schema.Struct({
  detail: Schema.NonEmptyArray(Schema.Struct({
    type: Schema.String,
    loc: Schema.Array(Schema.Union(Schema.String, Schema.Number)),
    msg: Schema.String,
    input: Schema.Unknown
  }))
})
const Health = Schema.Struct({
  timestamp: Timestamp,
  request_id: Schema.Null,
  status: Schema.Literal("healthy", "degraded", "unhealthy"),
  service: Schema.String,
  version: Schema.String,
  checks: Schema.Struct({ basic: Schema.Unknown, auth: Schema.Unknown }),
  uptime: Schema.Number
})
const Counts = Schema.Record({ key: Schema.String, value: Schema.Int })
const Stats = Schema.Struct({ inFlight: Schema.Int, maxInFlight: Schema.Int, requests: Counts, faultsInjected: Counts })
const Faults = Schema.Struct({
  rules: Schema.Array(Schema.Struct({ id: Schema.String, matched: Schema.Int, injected: Schema.Int, exhausted: Schema.Boolean })),
  faultsInjected: Counts
})
const Created = Schema.Struct({ id: Schema.String })
const Cleared = Schema.Struct({ cleared: Schema.Int })

/** Decodes `value` with `schema`, failing the test with the decode error when the shape is wrong. */
const as = <A, I>(schema: Schema.Schema<A, I>, value: unknown): A => Schema.decodeUnknownSync(schema)(value)

let fake: StartedFakeInventory
const started: Array<StartedFakeInventory> = []

const start = async (options: FakeInventoryOptions = {}): Promise<StartedFakeInventory> => {
  const f = await startFakeInventory(options)
  started.push(f)
  return f
}

beforeEach(async () => {
  fake = await start({ faults: true })
})

afterEach(async () => {
  await Promise.all(started.splice(0).map((f) => f.close()))
})

interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly json: unknown
}

const call = async (
  method: string,
  path: string,
  options: { readonly body?: unknown; readonly headers?: Record<string, string> } = {}
): Promise<Reply> => {
  const { body } = options
  const res = await fetch(`${fake.url}${path}`, {
    method,
    headers: { "content-type": "application/json", ...options.headers },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) })
  })
  return { status: res.status, headers: res.headers, json: await res.json() }
}

const get = (path: string) => call("GET", path)

const adjust = (bookId: string, quantityChange: number, notes?: string, headers: Record<string, string> = {}) =>
  call("POST", `/api/v1/inventory/adjust?book_id=${bookId}`, {
    body: notes === undefined ? { quantity_change: quantityChange } : { quantity_change: quantityChange, notes },
    headers
  })

const addRule = async (rule: unknown): Promise<string> => {
  const res = await call("POST", "/__faults", { body: rule })
  expect(res.status).toBe(201)
  return as(Created, res.json).id
}

const stock = async (bookId: string) => as(Stock, (await get(`/api/v1/inventory/${bookId}`)).json).inventory
const notesOf = async (bookId: string): Promise<Array<string | null>> =>
  as(Transactions, (await get(`/api/v1/transactions?book_id=${bookId}`)).json).transactions.map((t) => t.notes)
const stats = async () => as(Stats, (await get("/__stats")).json)

const eventually = async (check: () => Promise<boolean>, timeoutMs = 2000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not reached in time")
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe("fake inventory: the contract's routes", () => {
  it("serves a book's stock in the contract's shape, price as a string, naive timestamps", async () => {
    const res = await get(`/api/v1/inventory/${pride}`)
    expect(res.status).toBe(200)
    const body = as(Stock, res.json)
    expect(body.inventory).toMatchObject({ book_id: pride, quantity_available: 12, quantity_total: 12, reorder_point: 5 })
    expect(body.book).toMatchObject({
      id: pride,
      title: "Pride and Prejudice",
      subtitle: null,
      authors: ["Jane Austen"],
      price: "16.99",
      is_active: true
    })
  })

  it("accepts an upper-case id and answers with the canonical one", async () => {
    const res = await get(`/api/v1/inventory/${pride.toUpperCase()}`)
    expect(res.status).toBe(200)
    expect(as(Stock, res.json).inventory.book_id).toBe(pride)
  })

  it("answers 404 with the contract's detail for a book without a record", async () => {
    const res = await get(`/api/v1/inventory/${unknownBook}`)
    expect(res.status).toBe(404)
    expect(res.json).toEqual({ detail: "Inventory record not found" })
  })

  it("answers 422 with a list of field errors for non-UUID ids in path and query", async () => {
    const path = await get("/api/v1/inventory/not-a-uuid")
    expect(path.status).toBe(422)
    const pathErrors = as(FieldErrors, path.json).detail
    expect(pathErrors).toHaveLength(1)
    expect(pathErrors[0]).toMatchObject({ type: "uuid_parsing", loc: ["path", "book_id"], input: "not-a-uuid" })
    expect(pathErrors[0].msg).toMatch(/^Input should be a valid UUID/)

    const adj = await adjust("12345", -1)
    expect(adj.status).toBe(422)
    expect(as(FieldErrors, adj.json).detail[0]).toMatchObject({ type: "uuid_parsing", loc: ["query", "book_id"] })

    const tx = await get("/api/v1/transactions?book_id=nope")
    expect(tx.status).toBe(422)
    expect(as(FieldErrors, tx.json).detail[0]).toMatchObject({ type: "uuid_parsing", loc: ["query", "book_id"] })
    expect(fake.store.transactionsFor()).toHaveLength(0)
  })

  it("answers 422 for a missing book_id or a bad body, applying nothing", async () => {
    const noId = await call("POST", "/api/v1/inventory/adjust", { body: { quantity_change: -1 } })
    expect(noId.status).toBe(422)
    expect(as(FieldErrors, noId.json).detail[0]).toMatchObject({ type: "missing", loc: ["query", "book_id"] })

    const fractional = await adjust(pride, 1.5)
    expect(fractional.status).toBe(422)
    expect(as(FieldErrors, fractional.json).detail[0]).toMatchObject({ type: "int_from_float", loc: ["body", "quantity_change"] })

    const longNotes = await adjust(pride, -1, "x".repeat(501))
    expect(longNotes.status).toBe(422)
    expect(as(FieldErrors, longNotes.json).detail[0]).toMatchObject({ type: "string_too_long", loc: ["body", "notes"] })

    const badJson = await call("POST", `/api/v1/inventory/adjust?book_id=${pride}`, { body: "{nope" })
    expect(badJson.status).toBe(422)
    expect(as(FieldErrors, badJson.json).detail[0]).toMatchObject({ type: "json_invalid" })

    expect((await stock(pride)).quantity_available).toBe(12)
  })

  it("applies an adjust to both quantities and records a stock_out transaction with the note", async () => {
    const res = await adjust(frankenstein, -2, "order:o-1:0")
    expect(res.status).toBe(200)
    const transaction = as(Transaction, res.json)
    expect(transaction).toMatchObject({
      book_id: frankenstein,
      transaction_type: "stock_out",
      quantity_change: -2,
      notes: "order:o-1:0"
    })

    expect(await stock(frankenstein)).toMatchObject({ quantity_available: 23, quantity_total: 28 })
    const log = as(Transactions, (await get(`/api/v1/transactions?book_id=${frankenstein}`)).json)
    expect(log.transactions).toEqual([transaction])
  })

  it("records stock_in for a positive change and adjustment for 0", async () => {
    expect(as(Transaction, (await adjust(pride, 3, "compensate:o-1:0")).json).transaction_type).toBe("stock_in")
    expect(as(Transaction, (await adjust(pride, 0)).json)).toMatchObject({
      transaction_type: "adjustment",
      quantity_change: 0,
      notes: null
    })
    expect((await stock(pride)).quantity_available).toBe(15)
  })

  it("refuses an adjust below zero with 400, leaving stock and log unchanged", async () => {
    const res = await adjust(wuthering, -2, "order:o-2:0")
    expect(res.status).toBe(400)
    expect(res.json).toEqual({ detail: "Invalid adjustment - would result in negative inventory" })
    expect(await stock(wuthering)).toMatchObject({ quantity_available: 1, quantity_total: 1 })
    expect(await notesOf(wuthering)).toEqual([])

    expect((await adjust(wuthering, -1, "order:o-3:0")).status).toBe(200)
    expect((await adjust(wuthering, -1, "order:o-4:0")).status).toBe(400)
    expect((await stock(wuthering)).quantity_available).toBe(0)
  })

  it("takes the last copy exactly once when adjusts race", async () => {
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => adjust(wuthering, -1, `order:race-${i}:0`)))
    expect(results.filter((r) => r.status === 200)).toHaveLength(1)
    expect(results.filter((r) => r.status === 400)).toHaveLength(7)
    expect((await stock(wuthering)).quantity_available).toBe(0)
    expect(await notesOf(wuthering)).toHaveLength(1)
  })

  it("creates a record for a positive change to an unknown book (but GET stays 404, as in the real service)", async () => {
    expect((await adjust(unknownBook, -1)).status).toBe(400)
    expect(fake.store.available(unknownBook)).toBeUndefined()
    const res = await adjust(unknownBook, 4, "restock")
    expect(res.status).toBe(200)
    expect(as(Transaction, res.json).transaction_type).toBe("stock_in")
    expect(fake.store.available(unknownBook)).toBe(4)
    expect((await get(`/api/v1/inventory/${unknownBook}`)).status).toBe(404)
    expect(await notesOf(unknownBook)).toEqual(["restock"])
  })

  it("lists transactions newest first, paginated", async () => {
    for (const note of ["a", "b", "c"]) expect((await adjust(pride, -1, note)).status).toBe(200)
    await adjust(frankenstein, -1, "other book")

    const first = as(Transactions, (await get(`/api/v1/transactions?book_id=${pride}&page=1&per_page=2`)).json)
    expect(first.transactions.map((t) => t.notes)).toEqual(["c", "b"])
    expect(first.pagination).toEqual({ total: 3, page: 1, per_page: 2, pages: 2, has_next: true, has_prev: false })

    const second = as(Transactions, (await get(`/api/v1/transactions?book_id=${pride}&page=2&per_page=2`)).json)
    expect(second.transactions.map((t) => t.notes)).toEqual(["a"])
    expect(second.pagination).toEqual({ total: 3, page: 2, per_page: 2, pages: 2, has_next: false, has_prev: true })

    const all = as(Transactions, (await get("/api/v1/transactions")).json)
    expect(all.pagination.total).toBe(4)
    expect(all.transactions[0]?.notes).toBe("other book")

    const none = await get(`/api/v1/transactions?book_id=${unknownBook}`)
    expect(none.json).toEqual({
      transactions: [],
      pagination: { total: 0, page: 1, per_page: 20, pages: 1, has_next: false, has_prev: false }
    })

    const tooMany = await get(`/api/v1/transactions?book_id=${pride}&per_page=101`)
    expect(tooMany.status).toBe(422)
    expect(as(FieldErrors, tooMany.json).detail[0]).toMatchObject({ type: "less_than_equal", loc: ["query", "per_page"] })
  })

  it("lists the inventory, paginated, in the single GET's shapes", async () => {
    const firstReply = await get("/api/v1/inventory?page=1&per_page=5")
    expect(firstReply.status).toBe(200)
    const first = as(InventoryList, firstReply.json)
    expect(first.items).toHaveLength(5)
    expect(first.pagination).toEqual({ total: 20, page: 1, per_page: 5, pages: 4, has_next: true, has_prev: false })
    expect(first.items[0]).toEqual(as(Stock, (await get(`/api/v1/inventory/${demoCatalog[0]?.bookId}`)).json))
    // the real service names the list "inventory"; the fake serves both names
    expect(firstReply.json).toMatchObject({ inventory: first.items })

    const last = as(InventoryList, (await get("/api/v1/inventory?page=4&per_page=5")).json)
    expect(last.items).toHaveLength(5)
    expect(last.pagination).toMatchObject({ page: 4, has_next: false, has_prev: true })

    const ids = new Set<string>()
    for (let page = 1; page <= 4; page++) {
      for (const item of as(InventoryList, (await get(`/api/v1/inventory?page=${page}&per_page=5`)).json).items) {
        ids.add(item.book.id)
      }
    }
    expect(ids.size).toBe(20)
  })

  it("reports health in the contract's shape", async () => {
    const res = await get("/health")
    expect(res.status).toBe(200)
    expect(as(Health, res.json).status).toBe("healthy")
  })

  it("accepts any or no bearer token by default, and requires the configured one when set", async () => {
    expect((await adjust(pride, -1, "n1", { authorization: "Bearer whatever" })).status).toBe(200)

    fake = await start({ requireToken: "s3cret" })
    const missing = await adjust(pride, -1, "n2")
    expect(missing.status).toBe(401)
    expect(missing.json).toEqual({ detail: "Authentication required" })
    expect(missing.headers.get("www-authenticate")).toBe("Bearer")
    expect((await adjust(pride, -1, "n3", { authorization: "Bearer wrong" })).status).toBe(401)
    expect((await adjust(pride, -1, "n4", { authorization: "Bearer s3cret" })).status).toBe(200)
    expect(await notesOf(pride)).toEqual(["n4"])
    expect((await get(`/api/v1/inventory/${pride}`)).status).toBe(200) // reads stay open
  })

  it("serves a given seed instead of the demo catalog", async () => {
    fake = await start({ seed: [{ bookId: unknownBook, title: "Seeded", price: "7.50", quantity: 2, quantityTotal: 5 }] })
    const body = as(Stock, (await get(`/api/v1/inventory/${unknownBook}`)).json)
    expect(body.inventory).toMatchObject({ quantity_available: 2, quantity_total: 5 })
    expect(body.book).toMatchObject({ title: "Seeded", price: "7.50" })
    expect((await get(`/api/v1/inventory/${pride}`)).status).toBe(404)
  })

  it("answers 404 on the admin routes when faults are disabled", async () => {
    fake = await start()
    expect((await get("/__faults")).status).toBe(404)
    expect((await get("/__stats")).status).toBe(404)
    expect((await call("POST", "/__faults", { body: { route: "*", fault: { kind: "reset" } } })).status).toBe(404)
    expect((await call("POST", "/__stock", { body: { bookId: pride, quantity: 0 } })).status).toBe(404)
    expect(fake.faults).toBeUndefined()
  })
})

describe("fake inventory: faults", () => {
  it("applyThenFail 500 applies the adjust and records it, then answers 500", async () => {
    await addRule({ route: "adjust", fault: { kind: "applyThenFail", then: "500" }, times: 1 })
    const res = await adjust(pride, -2, "order:o-5:0")
    expect(res.status).toBe(500)
    expect(res.json).toEqual({ detail: "Internal server error" })
    expect((await stock(pride)).quantity_available).toBe(10)
    expect(await notesOf(pride)).toEqual(["order:o-5:0"])
  })

  it("applyThenFail drop applies the adjust, then drops the connection", async () => {
    await addRule({ route: "adjust", fault: { kind: "applyThenFail", then: "drop" }, times: 1 })
    await expect(adjust(pride, -3, "order:o-6:0")).rejects.toThrow()
    expect((await stock(pride)).quantity_available).toBe(9)
    expect(await notesOf(pride)).toEqual(["order:o-6:0"])
  })

  it("reset drops the connection and applies nothing", async () => {
    await addRule({ route: "adjust", fault: { kind: "reset" }, times: 1 })
    await expect(adjust(pride, -3, "order:o-7:0")).rejects.toThrow()
    expect((await stock(pride)).quantity_available).toBe(12)
    expect(await notesOf(pride)).toEqual([])
  })

  it("refuse drops the connection at once and applies nothing", async () => {
    await addRule({ route: "adjust", fault: { kind: "refuse" }, times: 1 })
    await expect(adjust(pride, -3, "order:o-8:0")).rejects.toThrow()
    expect((await stock(pride)).quantity_available).toBe(12)
    expect(await notesOf(pride)).toEqual([])
  })

  it("status answers that status with a detail body and applies nothing", async () => {
    await addRule({ route: "adjust", fault: { kind: "status", status: 503 }, times: 1 })
    const res = await adjust(pride, -3, "order:o-9:0")
    expect(res.status).toBe(503)
    as(Detail, res.json)
    expect((await stock(pride)).quantity_available).toBe(12)
    expect((await adjust(pride, -3, "order:o-9:0")).status).toBe(200)
  })

  it("consumes a sequence one fault per matching request, in order, then serves normally", async () => {
    const id = await addRule({
      route: "getStock",
      sequence: [{ kind: "status", status: 503 }, { kind: "none" }, { kind: "status", status: 500 }, { kind: "reset" }]
    })
    const statusOf = async () => (await fetch(`${fake.url}/api/v1/inventory/${pride}`)).status
    expect(await statusOf()).toBe(503)
    expect(await statusOf()).toBe(200)
    expect((await get("/health")).status).toBe(200) // other routes do not consume it
    expect(await statusOf()).toBe(500)
    await expect(statusOf()).rejects.toThrow()
    expect(await statusOf()).toBe(200)
    expect(await statusOf()).toBe(200)

    const listing = as(Faults, (await get("/__faults")).json)
    expect(listing.rules).toEqual([expect.objectContaining({ id, matched: 4, injected: 3, exhausted: true })])
    expect(listing.faultsInjected).toMatchObject({ status: 2, reset: 1 })
  })

  it("fires a probability-1 fault on every matching request, and only for the targeted book", async () => {
    await addRule({ route: "*", bookId: pride, probability: 1, fault: { kind: "status", status: 500 } })
    for (let i = 0; i < 5; i++) expect((await get(`/api/v1/inventory/${pride}`)).status).toBe(500)
    expect((await adjust(pride, -1)).status).toBe(500)
    expect((await get(`/api/v1/transactions?book_id=${pride}`)).status).toBe(500)
    expect((await get(`/api/v1/inventory/${frankenstein}`)).status).toBe(200)
    expect(fake.store.available(pride)).toBe(12)
  })

  it("never fires a probability-0 fault, and stops after `times` faults", async () => {
    await addRule({ route: "getStock", probability: 0, fault: { kind: "status", status: 500 } })
    for (let i = 0; i < 5; i++) expect((await get(`/api/v1/inventory/${pride}`)).status).toBe(200)

    fake = await start({ faults: true })
    await addRule({ route: "getStock", fault: { kind: "status", status: 503 }, times: 2 })
    const statuses: Array<number> = []
    for (let i = 0; i < 4; i++) statuses.push((await get(`/api/v1/inventory/${pride}`)).status)
    expect(statuses).toEqual([503, 503, 200, 200])
  })

  it("draws probability with the given random source", async () => {
    const draws = [0.9, 0.1, 0.6, 0.4]
    fake = await start({ faults: true, random: () => draws.shift() ?? 1 })
    await addRule({ route: "getStock", probability: 0.5, fault: { kind: "status", status: 503 } })
    const statuses: Array<number> = []
    for (let i = 0; i < 4; i++) statuses.push((await get(`/api/v1/inventory/${pride}`)).status)
    expect(statuses).toEqual([200, 503, 200, 503])
  })

  it("latency delays, then serves normally", async () => {
    await addRule({ route: "adjust", fault: { kind: "latency", ms: 250 }, times: 1 })
    const t0 = Date.now()
    const res = await adjust(pride, -1, "slow")
    expect(Date.now() - t0).toBeGreaterThanOrEqual(240)
    expect(res.status).toBe(200)
    expect((await stock(pride)).quantity_available).toBe(11)
  })

  it("hang answers nothing for ms, applies nothing, then drops; an impatient client frees the slot", async () => {
    await addRule({ route: "adjust", sequence: [{ kind: "hang", ms: 300 }] })
    const t0 = Date.now()
    await expect(adjust(pride, -1, "hung")).rejects.toThrow()
    expect(Date.now() - t0).toBeGreaterThanOrEqual(280)
    expect(fake.store.available(pride)).toBe(12)

    await addRule({ route: "getStock", fault: { kind: "hang" } }) // default 60 s
    const pending = fetch(`${fake.url}/api/v1/inventory/${pride}`, { signal: AbortSignal.timeout(200) })
    await eventually(async () => (await stats()).inFlight === 1)
    await expect(pending).rejects.toThrow()
    await eventually(async () => (await stats()).inFlight === 0)
  })

  it("closes promptly with a request still hanging", async () => {
    await addRule({ route: "getStock", fault: { kind: "hang" } })
    const pending = fetch(`${fake.url}/api/v1/inventory/${pride}`)
    await eventually(async () => (await stats()).inFlight === 1)
    const t0 = Date.now()
    await fake.close()
    expect(Date.now() - t0).toBeLessThan(2000)
    await expect(pending).rejects.toThrow()
  })

  it("counts requests in flight, including slow ones, and their maximum", async () => {
    await addRule({ route: "getStock", fault: { kind: "latency", ms: 300 } })
    const results = await Promise.all(
      Array.from({ length: 6 }, () => fetch(`${fake.url}/api/v1/inventory/${pride}`).then((r) => r.status))
    )
    expect(results).toEqual([200, 200, 200, 200, 200, 200])
    await adjust(pride, -1)

    const after = await stats()
    expect(after.inFlight).toBe(0)
    expect(after.maxInFlight).toBe(6)
    expect(after.requests).toMatchObject({ getStock: 6, adjust: 1 })
    expect(after.faultsInjected).toMatchObject({ latency: 6 })

    const reset = as(Stats, (await call("POST", "/__stats/reset")).json)
    expect(reset).toMatchObject({ inFlight: 0, maxInFlight: 0, requests: { getStock: 0, adjust: 0 }, faultsInjected: { latency: 0 } })
  })

  it("clears all rules with DELETE /__faults", async () => {
    await addRule({ route: "*", fault: { kind: "status", status: 500 } })
    expect((await get("/health")).status).toBe(500)
    expect(as(Cleared, (await call("DELETE", "/__faults")).json).cleared).toBe(1)
    expect((await get("/health")).status).toBe(200)
    expect(as(Faults, (await get("/__faults")).json).rules).toEqual([])
  })

  it("rejects a malformed rule with 400", async () => {
    const bad = [
      { route: "nowhere", fault: { kind: "reset" } },
      { route: "adjust" },
      { route: "adjust", sequence: [{ kind: "reset" }], fault: { kind: "reset" } },
      { route: "adjust", fault: { kind: "status", status: 200 } },
      { route: "adjust", sequence: [{ kind: "reset" }], probability: 0.5 }
    ]
    for (const rule of bad) {
      const res = await call("POST", "/__faults", { body: rule })
      expect(res.status).toBe(400)
      as(Detail, res.json)
    }
    expect(as(Faults, (await get("/__faults")).json).rules).toEqual([])
  })

  it("installs rules given at start-up", async () => {
    fake = await start({ faults: { rules: [{ route: "health", sequence: [{ kind: "status", status: 503 }] }] } })
    expect((await get("/health")).status).toBe(503)
    expect((await get("/health")).status).toBe(200)
  })

  it("sets stock directly with POST /__stock, creating the book when unknown", async () => {
    expect((await call("POST", "/__stock", { body: { bookId: pride, quantity: 1 } })).status).toBe(200)
    expect(await stock(pride)).toMatchObject({ quantity_available: 1, quantity_total: 1 })

    expect((await call("POST", "/__stock", { body: { bookId: unknownBook, quantity: 3, price: "5.25" } })).status).toBe(200)
    const created = as(Stock, (await get(`/api/v1/inventory/${unknownBook}`)).json)
    expect(created.inventory.quantity_available).toBe(3)
    expect(created.book.price).toBe("5.25")

    expect((await call("POST", "/__stock", { body: { bookId: "nope", quantity: 1 } })).status).toBe(400)
    expect(await notesOf(pride)).toEqual([])
  })
})

/** A raw TCP client: writes `text`, collects what comes back, tells when the server ends it. */
const rawClient = (text: string) => {
  const socket = connect(fake.port, "127.0.0.1")
  let received = ""
  const ended = new Promise<string>((resolve) => {
    socket.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"))
    socket.on("close", () => resolve("closed"))
  })
  socket.on("data", (d: Buffer) => (received += d.toString()))
  socket.write(text)
  return { socket, ended, received: () => received }
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe("fake inventory: the connection's edge cases", () => {
  it("refuse on an adjust drops the connection before the body has arrived; nothing is applied", async () => {
    await addRule({ route: "adjust", fault: { kind: "refuse" }, times: 1 })
    const client = rawClient(
      `POST /api/v1/inventory/adjust?book_id=${pride} HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"quantity`
    )
    const outcome = await Promise.race([client.ended, pause(1000).then(() => "still open")])
    expect(outcome).toMatch(/ECONNRESET|closed/)
    expect((await stock(pride)).quantity_available).toBe(12)
  })

  it("pipelined requests on a connection the client closes: counted out, and a delayed adjust is not applied", async () => {
    await addRule({ route: "getStock", bookId: frankenstein, fault: { kind: "hang", ms: 1000 }, times: 1 })
    await addRule({ route: "adjust", fault: { kind: "latency", ms: 300 }, times: 1 })
    const body = JSON.stringify({ quantity_change: -1, notes: "pipelined" })
    const client = rawClient(
      `GET /api/v1/inventory/${frankenstein} HTTP/1.1\r\nHost: x\r\n\r\n` +
        `POST /api/v1/inventory/adjust?book_id=${pride} HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}` +
        `GET /health HTTP/1.1\r\nHost: x\r\n\r\n`
    )
    await eventually(async () => (await stats()).inFlight >= 2)
    client.socket.destroy()
    await eventually(async () => (await stats()).inFlight === 0)
    await pause(500) // past the adjust's 300 ms
    expect((await stock(pride)).quantity_available).toBe(12)
    expect((await stats()).inFlight).toBe(0)
  })

  it("HEAD is served as GET without a body; a trailing slash or a doubled one finds the route", async () => {
    const head = await fetch(`${fake.url}/health`, { method: "HEAD" })
    expect(head.status).toBe(200)
    expect(await head.text()).toBe("")
    expect((await get("/health/")).status).toBe(200)
    expect((await get(`//api/v1/inventory/${pride}/`)).status).toBe(200)
    const applied = await call("POST", `/api/v1/inventory/adjust/?book_id=${pride}`, { body: { quantity_change: -1 } })
    expect(applied.status).toBe(200)
    expect((await stock(pride)).quantity_available).toBe(11)
  })
})

describe("fake inventory: start-up settings", () => {
  const readEnv = (env: Record<string, string>) =>
    Effect.runPromise(
      fakeInventoryOptionsFromEnv.pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))),
        Effect.provide(NodeContext.layer),
        Effect.either
      )
    )

  it("reads faults, rules, token and a seed file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "fake-inventory-"))
    try {
      const seedPath = join(dir, "seed.json")
      await writeFile(seedPath, JSON.stringify([{ bookId: unknownBook, title: "From file", price: "3.00", quantity: 4 }]))
      const result = await readEnv({
        FAKE_INVENTORY_SEED: seedPath,
        FAKE_INVENTORY_FAULTS: "1",
        FAKE_INVENTORY_FAULT_RULES: JSON.stringify([{ route: "adjust", fault: { kind: "reset" }, times: 1 }]),
        FAKE_INVENTORY_REQUIRE_TOKEN: "tok"
      })
      if (result._tag !== "Right") throw new Error(`settings rejected: ${String(result.left)}`)
      expect(result.right.seed).toEqual([{ bookId: unknownBook, title: "From file", price: "3.00", quantity: 4 }])
      expect(result.right.faults).toEqual({ rules: [{ route: "adjust", fault: { kind: "reset" }, times: 1 }] })
      expect(result.right.requireToken).toBe("tok")

      fake = await start(result.right)
      expect(as(Stock, (await get(`/api/v1/inventory/${unknownBook}`)).json).book.title).toBe("From file")
      await expect(adjust(unknownBook, -1, "x", { authorization: "Bearer tok" })).rejects.toThrow()
      expect((await adjust(unknownBook, -1, "x", { authorization: "Bearer tok" })).status).toBe(200)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it("defaults to the demo catalog with faults off", async () => {
    const result = await readEnv({})
    if (result._tag !== "Right") throw new Error(`settings rejected: ${String(result.left)}`)
    expect(result.right.seed).toBeUndefined()
    expect(result.right.faults).toBe(false)
    expect(result.right.requireToken).toBeUndefined()
  })

  it("stops on bad settings, naming the variable", async () => {
    const failure = async (env: Record<string, string>) => {
      const result = await readEnv(env)
      if (result._tag !== "Left") throw new Error("settings accepted")
      return String(result.left)
    }
    expect(await failure({ FAKE_INVENTORY_FAULT_RULES: "[]" })).toMatch(/FAKE_INVENTORY_FAULT_RULES/)
    expect(await failure({ FAKE_INVENTORY_FAULTS: "1", FAKE_INVENTORY_FAULT_RULES: "[{\"route\":\"x\"}]" }))
      .toMatch(/FAKE_INVENTORY_FAULT_RULES/)
    expect(await failure({ FAKE_INVENTORY_FAULTS: "maybe" })).toMatch(/FAKE_INVENTORY_FAULTS/)
    expect(await failure({ FAKE_INVENTORY_SEED: join(tmpdir(), "does-not-exist-fake-inventory.json") }))
      .toMatch(/FAKE_INVENTORY_SEED/)
  })
})
