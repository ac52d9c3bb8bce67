import { randomUUID } from "node:crypto"
import { request as httpRequest } from "node:http"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  addFault,
  newBook,
  orderBody,
  request,
  type Running,
  setStock,
  startApi,
  startFakeInventory,
  stockOf,
  tempDir
} from "./harness.js"
import { type E2eDatabase, e2eDatabases } from "./databases.js"

describe.each(e2eDatabases)("placing orders end to end (api + fake inventory processes) [$name]", (database) => {
  let inventory: Running
  let api: Running
  let declining: Running
  let db: E2eDatabase
  const dir = tempDir()

  beforeAll(async () => {
    inventory = await startFakeInventory()
    db = await database.make(dir.dir)
    api = await startApi(inventory.url, dir.dir, { DATABASE_URL: db.url })
    // a second replica on the same database whose payments are all declined
    declining = await startApi(inventory.url, dir.dir, { DATABASE_URL: db.url, PAYMENT_SUCCESS_RATIO: "0" })
  })
  afterAll(async () => {
    await Promise.all([api?.stop(), declining?.stop()])
    await inventory?.stop()
    await db?.drop()
    dir.remove()
  })

  it("an order of 2 lines lowers both stocks by their quantities and can be read back", async () => {
    const [a, b] = [await newBook(inventory.url, 10), await newBook(inventory.url, 5)]
    const res = await request(`${api.url}/orders`, {
      body: orderBody([[a, 2, 16.99], [b, 3, "0.10"]]),
      headers: { "Idempotency-Key": randomUUID(), "X-Request-Id": "e2e-corr-1" }
    })
    expect(res.status).toBe(201)
    expect(res.headers.get("x-request-id")).toBe("e2e-corr-1")
    expect(res.body).toMatchObject({
      status: "CONFIRMED",
      total: 34.28,
      currency: "USD",
      items: [
        { bookId: a, qty: 2, unitPrice: 16.99, lineTotal: 33.98 },
        { bookId: b, qty: 3, unitPrice: 0.1, lineTotal: 0.3 }
      ]
    })
    expect(await stockOf(inventory.url, a)).toBe(8)
    expect(await stockOf(inventory.url, b)).toBe(2)
    const body = res.body as { orderId: string; createdAt: string }
    expect(body.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/)
    const read = await request(`${api.url}/orders/${body.orderId}`)
    expect(read.status).toBe(200)
    expect(read.body).toEqual(res.body)
  })

  it("a replay returns the same order with Idempotent-Replayed and leaves stock alone; another body is 409", async () => {
    const a = await newBook(inventory.url, 10)
    const key = randomUUID()
    const first = await request(`${api.url}/orders`, { body: orderBody([[a, 1, 5]]), headers: { "Idempotency-Key": key } })
    expect(first.status).toBe(201)
    // same request spelled differently: key order, whitespace, number spelling
    const raw = `{ "items": [ {"unitPrice": "5.00", "qty": 1, "bookId": "${a}"} ], "userId": "reader-e2e" }`
    const replay = await request(`${api.url}/orders`, { raw, headers: { "Idempotency-Key": key } })
    expect(replay.status).toBe(200)
    expect(replay.headers.get("idempotent-replayed")).toBe("true")
    expect(replay.body).toEqual(first.body)
    expect(await stockOf(inventory.url, a)).toBe(9)
    const conflict = await request(`${api.url}/orders`, { body: orderBody([[a, 2, 5]]), headers: { "Idempotency-Key": key } })
    expect(conflict.status).toBe(409)
    expect(conflict.body).toMatchObject({
      error: "idempotency_conflict",
      details: [{ field: "Idempotency-Key", message: "was already used with a different request" }]
    })
    expect(await stockOf(inventory.url, a)).toBe(9)
  })

  it("20 concurrent POSTs with one key create exactly one order and take stock once", async () => {
    const a = await newBook(inventory.url, 50)
    const key = randomUUID()
    const responses = await Promise.all(
      Array.from({ length: 20 }, () =>
        request(`${api.url}/orders`, { body: orderBody([[a, 3, 2.5]]), headers: { "Idempotency-Key": key } })
      )
    )
    const statuses = responses.map((r) => r.status)
    expect(statuses.filter((s) => s === 201)).toHaveLength(1)
    expect(statuses.every((s) => s === 201 || s === 200 || s === 409)).toBe(true)
    for (const r of responses.filter((r) => r.status === 409)) {
      expect(r.body).toMatchObject({ error: "idempotency_in_progress" })
      expect(r.headers.get("retry-after")).toBe("1")
    }
    const ids = new Set(responses.filter((r) => r.status < 300).map((r) => (r.body as { orderId: string }).orderId))
    expect(ids.size).toBe(1)
    expect(await stockOf(inventory.url, a)).toBe(47)
  })

  it("with PAYMENT_SUCCESS_RATIO=0 the order is PAYMENT_FAILED and every stock is back", async () => {
    const [a, b] = [await newBook(inventory.url, 4), await newBook(inventory.url, 6)]
    const key = randomUUID()
    const res = await request(`${declining.url}/orders`, {
      body: orderBody([[a, 2, 3], [b, 1, 4]]),
      headers: { "Idempotency-Key": key }
    })
    expect(res.status).toBe(400)
    expect(res.body).toMatchObject({ error: "payment_failed" })
    expect([await stockOf(inventory.url, a), await stockOf(inventory.url, b)]).toEqual([4, 6])
    const orderId = (res.body as { details: { orderId: string } }).details.orderId
    const read = await request(`${declining.url}/orders/${orderId}`)
    expect(read.body).toMatchObject({ status: "PAYMENT_FAILED" })
    // the decision about money is replayed, without touching the inventory again
    const replay = await request(`${declining.url}/orders`, {
      body: orderBody([[a, 2, 3], [b, 1, 4]]),
      headers: { "Idempotency-Key": key }
    })
    expect(replay.status).toBe(400)
    expect(replay.headers.get("idempotent-replayed")).toBe("true")
    expect(replay.body).toMatchObject({ error: "payment_failed", details: { orderId } })
  })

  it("a 3-line order whose third take is refused (stock sold meanwhile) leaves all three stocks as they were (409, CANCELLED)", async () => {
    const [a, b, c] = [await newBook(inventory.url, 5), await newBook(inventory.url, 5), await newBook(inventory.url, 5)]
    // the third take is slow to arrive; meanwhile another buyer takes all but one copy of that book
    await addFault(inventory.url, { route: "adjust", bookId: c, sequence: [{ kind: "latency", ms: 600 }] })
    const placing = request(`${api.url}/orders`, {
      body: orderBody([[a, 1, 1], [b, 2, 1], [c, 3, 1]]),
      headers: { "Idempotency-Key": randomUUID() }
    })
    await new Promise((r) => setTimeout(r, 250))
    await setStock(inventory.url, c, 1)
    const res = await placing
    expect(res.status).toBe(409)
    expect(res.body).toMatchObject({ error: "insufficient_stock", details: [{ bookId: c, available: 1, requested: 3 }] })
    expect([await stockOf(inventory.url, a), await stockOf(inventory.url, b), await stockOf(inventory.url, c)]).toEqual([
      5, 5, 1
    ])
  })

  it("pre-check: short lines are 409 with what is on hand; an unknown book is 422; nothing is taken", async () => {
    const [a, b] = [await newBook(inventory.url, 1), await newBook(inventory.url, 9)]
    const short = await request(`${api.url}/orders`, { body: orderBody([[a, 2, 1], [b, 3, 1]]) })
    expect(short.status).toBe(409)
    expect(short.body).toMatchObject({ error: "insufficient_stock", details: [{ bookId: a, available: 1, requested: 2 }] })
    const unknownId = randomUUID()
    const unknown = await request(`${api.url}/orders`, { body: orderBody([[b, 1, 1], [unknownId, 1, 1]]) })
    expect(unknown.status).toBe(422)
    expect(unknown.body).toMatchObject({ error: "unknown_book", details: { bookIds: [unknownId] } })
    expect([await stockOf(inventory.url, a), await stockOf(inventory.url, b)]).toEqual([1, 9])
  })

  it("bad input is a 400 naming the field, and the service keeps serving", async () => {
    const a = await newBook(inventory.url, 3)
    const cases: Array<{ raw?: string; body?: unknown; headers?: Record<string, string>; field: string }> = [
      { raw: "{not json", field: "body" },
      { body: { userId: "u", items: [] }, field: "items" },
      { body: orderBody([[a, 0, 1]]), field: "items[0].qty" },
      { body: orderBody([[a, 1, 1.999]]), field: "items[0].unitPrice" },
      { body: orderBody([["not-a-uuid", 1, 1]]), field: "items[0].bookId" },
      { body: orderBody([[a, 1, 1], [a, 1, 1]]), field: "items[1].bookId" },
      { body: orderBody([[a, 1, 1]], ""), field: "userId" },
      { body: orderBody([[a, 1, 1]]), headers: { "Idempotency-Key": "x".repeat(256) }, field: "Idempotency-Key" },
      { body: { ...orderBody([[a, 1, 1]]), idempotencyKey: "one" }, headers: { "Idempotency-Key": "two" }, field: "idempotencyKey" },
      { raw: "hello", headers: { "content-type": "text/plain" }, field: "Content-Type" },
      { raw: JSON.stringify({ ...orderBody([[a, 1, 1]]), pad: "x".repeat(70_000) }), field: "body" }
    ]
    for (const c of cases) {
      const res = await request(`${api.url}/orders`, c)
      expect({ field: c.field, status: res.status }).toEqual({ field: c.field, status: 400 })
      expect(res.body).toMatchObject({ error: "validation_error", correlationId: expect.any(String) })
      const fields = (res.body as { details: Array<{ field: string }> }).details.map((d) => d.field)
      expect(fields).toContain(c.field)
    }
    expect(await stockOf(inventory.url, a)).toBe(3)
    const ok = await request(`${api.url}/orders`, { body: orderBody([[a, 1, 1]]) })
    expect(ok.status).toBe(201)
  })

  it("the order routes answer alike in every form of their URLs (the fast path and the router); a wrong method is 405", async () => {
    const a = await newBook(inventory.url, 10)
    for (const path of ["/orders", "/orders/", "//orders", "/orders?source=web"]) {
      const res = await request(`${api.url}${path}`, { body: orderBody([[a, 1, 2]]) })
      expect({ path, status: res.status }).toEqual({ path, status: 201 })
      const orderId = (res.body as { orderId: string }).orderId
      for (const form of [`/orders/${orderId}`, `/orders/${orderId}/`, `/orders/${orderId}?x=1`, `//orders/${orderId}`]) {
        const read = await request(`${api.url}${form}`)
        expect({ form, status: read.status }).toEqual({ form, status: 200 })
        expect(read.body).toMatchObject({ orderId, status: "CONFIRMED", total: 2 })
      }
    }
    expect(await stockOf(inventory.url, a)).toBe(6)
    for (const [method, path, allowed] of [["PUT", "/orders", "POST"], ["GET", "/orders", "POST"], ["DELETE", `/orders/${randomUUID()}`, "GET"]] as const) {
      const res = await request(`${api.url}${path}`, { method })
      expect({ method, path, status: res.status }).toEqual({ method, path, status: 405 })
      expect(res.body).toMatchObject({ error: "method_not_allowed", message: expect.stringContaining(`use ${allowed}`) })
    }
  })

  it("a body past the 1 MiB read limit closes the connection unanswered and writes nothing; the api keeps serving", async () => {
    const a = await newBook(inventory.url, 5)
    const outcome = await new Promise<string>((resolve) => {
      const req = httpRequest(`${api.url}/orders`, { method: "POST", headers: { "content-type": "application/json" } }, (res) =>
        resolve(`answered ${res.statusCode ?? 0}`)
      )
      req.on("error", (e: NodeJS.ErrnoException) => resolve(`closed ${e.code ?? e.message}`))
      // chunked, so no Content-Length tells the api in advance: 2 MiB of one JSON string
      const chunk = "x".repeat(64 * 1024)
      let sent = 0
      const write = (): void => {
        while (sent < 32) {
          sent++
          if (!req.write(sent === 1 ? `{"userId":"${chunk}` : chunk)) return void req.once("drain", write)
        }
        req.end()
      }
      write()
    })
    expect(outcome).toMatch(/^closed /)
    expect(await stockOf(inventory.url, a)).toBe(5)
    const ok = await request(`${api.url}/orders`, { body: orderBody([[a, 1, 1]]) })
    expect(ok.status).toBe(201)
  })

  it("a body that arrives in pieces, one cut inside a character, is read as the same text as the whole", async () => {
    const a = await newBook(inventory.url, 5)
    const key = randomUUID()
    const bytes = Buffer.from(JSON.stringify(orderBody([[a, 1, 2]], "zoë-e2e")), "utf8")
    const cut = bytes.indexOf(Buffer.from("ë", "utf8")) + 1 // between the two bytes of "ë"
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        `${api.url}/orders`,
        { method: "POST", headers: { "content-type": "application/json", "idempotency-key": key } },
        (res) => {
          res.resume()
          resolve(res.statusCode ?? 0)
        }
      )
      req.on("error", reject)
      // chunked: the two halves reach the api as two chunks
      req.write(bytes.subarray(0, cut))
      setTimeout(() => req.end(bytes.subarray(cut)), 50)
    })
    expect(status).toBe(201)
    // the same key with the whole body is a replay of that order: the text read was the same, userId included
    const replay = await request(`${api.url}/orders`, { raw: bytes.toString("utf8"), headers: { "Idempotency-Key": key } })
    expect(replay.status).toBe(200)
    expect(replay.headers.get("idempotent-replayed")).toBe("true")
    expect(await stockOf(inventory.url, a)).toBe(4)
  })

  it("GET /orders/{id}: unknown and non-UUID ids are 404 order_not_found", async () => {
    for (const id of [randomUUID(), "not-a-uuid", "%00"]) {
      const res = await request(`${api.url}/orders/${id}`)
      expect(res.status).toBe(404)
      expect(res.body).toMatchObject({ error: "order_not_found" })
    }
  })

  it("health, the OpenAPI document with every error code, and the API reference page", async () => {
    const health = await request(`${api.url}/health`)
    expect(health.status).toBe(200)
    expect(health.body).toMatchObject({ status: "healthy", version: expect.any(String), timestamp: expect.any(String) })
    const spec = await request(`${api.url}/openapi.json`)
    expect(spec.status).toBe(200)
    const text = JSON.stringify(spec.body)
    expect(text).not.toContain("HttpApiDecodeError") // never sent: bad bodies are validation_error
    for (const code of [
      "validation_error",
      "payment_failed",
      "order_not_found",
      "insufficient_stock",
      "unknown_book",
      "idempotency_conflict",
      "idempotency_in_progress",
      "upstream_unavailable",
      "upstream_timeout",
      "internal_error"
    ]) {
      expect(text).toContain(code)
    }
    const responses = (spec.body as { paths: Record<string, { post?: { responses: Record<string, unknown> } }> }).paths[
      "/orders"
    ]?.post?.responses
    expect(Object.keys(responses ?? {}).sort()).toEqual(["200", "201", "400", "409", "422", "500", "502", "503", "504"])
    const docs = await fetch(`${api.url}/docs`)
    expect(docs.status).toBe(200)
    expect(await docs.text()).toContain("<html")
  })
})

describe("shutdown", () => {
  it("SIGTERM stops the api with exit code 0", async () => {
    const inventory = await startFakeInventory()
    const db = tempDir()
    try {
      const api = await startApi(inventory.url, db.dir)
      expect(await api.stop()).toBe(0)
    } finally {
      await inventory.stop()
      db.remove()
    }
  })
})
