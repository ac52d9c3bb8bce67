import { randomUUID } from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { addFault, newBook, orderBody, request, type Running, startApi, startFakeInventory, stockOf, tempDir } from "./harness.js"

const transactionsOf = async (inventoryUrl: string, bookId: string) => {
  const res = await request(`${inventoryUrl}/api/v1/transactions?book_id=${bookId}&per_page=100`)
  return (res.body as { transactions: Array<{ quantity_change: number; notes: string }> }).transactions
}

const stats = async (inventoryUrl: string) =>
  (await request(`${inventoryUrl}/__stats`)).body as { maxInFlight: number; requests: Record<string, number> }

/** POSTs an order and hangs up after `ms`: "left", or "answered <status>" when an answer came first. */
const placeAndLeave = (apiUrl: string, body: unknown, key: string, ms: number): Promise<string> =>
  fetch(`${apiUrl}/orders`, {
    method: "POST",
    headers: { "content-type": "application/json", "Idempotency-Key": key },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(ms)
  }).then((res) => `answered ${res.status}`, () => "left")

const eventually = async (check: () => Promise<boolean>, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) return false
    await new Promise((r) => setTimeout(r, 200))
  }
  return true
}

describe("inventory faults end to end", () => {
  let inventory: Running
  let api: Running
  const dir = tempDir()
  beforeAll(async () => {
    inventory = await startFakeInventory()
    api = await startApi(inventory.url, dir.dir, {
      REQUEST_TIMEOUT_SECONDS: "0.5",
      RECOVERY_LEASE_SECONDS: "1",
      RECOVERY_INTERVAL_SECONDS: "0.3",
      CIRCUIT_BREAKER_FAILURES: "1000"
    })
  })
  afterAll(async () => {
    await api?.stop()
    await inventory?.stop()
    dir.remove()
  })

  it("a client that hangs up mid-saga is logged and counted as 499 at once; its saga goes on and confirms the order", async () => {
    const a = await newBook(inventory.url, 10)
    await addFault(inventory.url, { route: "getStock", bookId: a, fault: { kind: "latency", ms: 400 } })
    const hungUp = async () => {
      const metrics = String((await request(`${api.url}/metrics`)).body)
      const line = metrics.split("\n").find((l) =>
        l.startsWith("http_server_request_duration_seconds_count{") && l.includes('route="/orders"') && l.includes('status="499"'))
      return Number(line?.split(" ").at(-1) ?? 0)
    }
    const before = await hungUp()
    const key = randomUUID()
    expect(await placeAndLeave(api.url, orderBody([[a, 3, 2]]), key, 150)).toBe("left")
    // counted when the client left, not when the saga ended (~0.4 s later)
    expect(await eventually(async () => (await hungUp()) === before + 1, 300)).toBe(true)
    // the saga is detached: it goes on, and the key then replays its order
    expect(await eventually(async () => (await stockOf(inventory.url, a)) === 7, 3_000)).toBe(true)
    const replay = await request(`${api.url}/orders`, { body: orderBody([[a, 3, 2]]), headers: { "Idempotency-Key": key } })
    expect(replay.status).toBe(200)
    expect(replay.body).toMatchObject({ status: "CONFIRMED" })
  })

  it("apply-then-drop on a take: the take is found in the log, applied exactly once, order CONFIRMED", async () => {
    const a = await newBook(inventory.url, 10)
    await addFault(inventory.url, { route: "adjust", bookId: a, sequence: [{ kind: "applyThenFail", then: "drop" }] })
    const res = await request(`${api.url}/orders`, { body: orderBody([[a, 3, 2]]), headers: { "Idempotency-Key": randomUUID() } })
    expect(res.status).toBe(201)
    expect(res.body).toMatchObject({ status: "CONFIRMED" })
    expect(await stockOf(inventory.url, a)).toBe(7)
    expect((await transactionsOf(inventory.url, a)).map((t) => t.quantity_change)).toEqual([-3])
  })

  it("apply-then-500 on a take is not sent again: applied exactly once", async () => {
    const a = await newBook(inventory.url, 10)
    await addFault(inventory.url, { route: "adjust", bookId: a, sequence: [{ kind: "applyThenFail", then: "500" }] })
    const res = await request(`${api.url}/orders`, { body: orderBody([[a, 2, 2]]) })
    expect(res.status).toBe(201)
    expect(await stockOf(inventory.url, a)).toBe(8)
  })

  it("apply-then-drop on a compensation: the stock is returned exactly once", async () => {
    const [a, b] = [await newBook(inventory.url, 10), await newBook(inventory.url, 10)]
    // A's take goes through, B's take is refused, A's give-back is applied but its answer lost
    await addFault(inventory.url, {
      route: "adjust",
      bookId: a,
      sequence: [{ kind: "none" }, { kind: "applyThenFail", then: "drop" }]
    })
    await addFault(inventory.url, { route: "adjust", bookId: b, sequence: [{ kind: "status", status: 400 }] })
    const res = await request(`${api.url}/orders`, { body: orderBody([[a, 4, 1], [b, 1, 1]]) })
    expect(res.status).toBe(502) // refused although stock would cover it: the inventory's failure
    expect(await stockOf(inventory.url, a)).toBe(10)
    expect((await transactionsOf(inventory.url, a)).map((t) => t.quantity_change)).toEqual([4, -4])
  })

  it("an outage longer than the retries ends in 502 and every taken line is given back", async () => {
    const [a, b] = [await newBook(inventory.url, 10), await newBook(inventory.url, 10)]
    await addFault(inventory.url, { route: "adjust", bookId: b, fault: { kind: "status", status: 503 }, times: 6 })
    const res = await request(`${api.url}/orders`, { body: orderBody([[a, 2, 1], [b, 2, 1]]) })
    expect(res.status).toBe(502)
    expect(res.body).toMatchObject({ error: "upstream_unavailable" })
    expect([await stockOf(inventory.url, a), await stockOf(inventory.url, b)]).toEqual([10, 10])
  })

  it("a take that hangs past every timeout: 502, then recovery settles it and all stock is back", async () => {
    const [a, b] = [await newBook(inventory.url, 10), await newBook(inventory.url, 10)]
    await addFault(inventory.url, { route: "adjust", bookId: b, fault: { kind: "hang", ms: 1500 }, times: 2 })
    const res = await request(`${api.url}/orders`, { body: orderBody([[a, 2, 1], [b, 2, 1]]) })
    expect([502, 504]).toContain(res.status)
    const settled = await eventually(
      async () => (await stockOf(inventory.url, a)) === 10 && (await stockOf(inventory.url, b)) === 10,
      15_000
    )
    expect(settled).toBe(true)
  })
})

describe("bulkhead and circuit breaker", () => {
  it("50 orders at once against a slow inventory: never more than INVENTORY_MAX_CONCURRENCY in flight, all final", async () => {
    const inventory = await startFakeInventory()
    const dir = tempDir()
    const api = await startApi(inventory.url, dir.dir, { INVENTORY_MAX_CONCURRENCY: "4" })
    try {
      const a = await newBook(inventory.url, 1000)
      await addFault(inventory.url, { route: "*", fault: { kind: "latency", ms: 100 } })
      await request(`${inventory.url}/__stats/reset`, { method: "POST" })
      const responses = await Promise.all(
        Array.from({ length: 50 }, () => request(`${api.url}/orders`, { body: orderBody([[a, 1, 1]]) }))
      )
      expect(responses.map((r) => r.status)).toEqual(Array.from({ length: 50 }, () => 201))
      const s = await stats(inventory.url)
      expect(s.maxInFlight).toBeGreaterThan(1)
      expect(s.maxInFlight).toBeLessThanOrEqual(4)
      expect(await stockOf(inventory.url, a)).toBe(950)
    } finally {
      await api.stop()
      await inventory.stop()
      dir.remove()
    }
  })

  it("opens after consecutive failures: new orders fail fast with 503 and Retry-After, health is degraded; it closes again", async () => {
    const inventory = await startFakeInventory()
    const dir = tempDir()
    const api = await startApi(inventory.url, dir.dir, {
      CIRCUIT_BREAKER_FAILURES: "2",
      CIRCUIT_BREAKER_COOLDOWN_SECONDS: "1",
      RETRY_ATTEMPTS: "0"
    })
    try {
      const a = await newBook(inventory.url, 10)
      await addFault(inventory.url, { route: "getStock", fault: { kind: "status", status: 500 }, times: 2 })
      for (let i = 0; i < 2; i++) {
        expect((await request(`${api.url}/orders`, { body: orderBody([[a, 1, 1]]) })).status).toBe(502)
      }
      const before = (await stats(inventory.url)).requests["getStock"] ?? 0
      const fast = await request(`${api.url}/orders`, { body: orderBody([[a, 1, 1]]) })
      expect(fast.status).toBe(503)
      expect(fast.body).toMatchObject({ error: "upstream_unavailable" })
      expect(Number(fast.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)
      expect((await stats(inventory.url)).requests["getStock"] ?? 0).toBe(before) // the inventory was not called
      expect((await request(`${api.url}/health`)).body).toMatchObject({ status: "degraded", checks: { inventoryCircuit: "open" } })
      await new Promise((r) => setTimeout(r, 1100))
      const trial = await request(`${api.url}/orders`, { body: orderBody([[a, 1, 1]]) })
      expect(trial.status).toBe(201)
      expect((await request(`${api.url}/health`)).body).toMatchObject({ status: "healthy", checks: { inventoryCircuit: "closed" } })
    } finally {
      await api.stop()
      await inventory.stop()
      dir.remove()
    }
  })
})

describe("load shedding: MAX_ORDERS_IN_FLIGHT", () => {
  let inventory: Running
  let api: Running
  const dir = tempDir()
  beforeAll(async () => {
    inventory = await startFakeInventory()
    api = await startApi(inventory.url, dir.dir, { MAX_ORDERS_IN_FLIGHT: "2" })
  })
  afterAll(async () => {
    await api?.stop()
    await inventory?.stop()
    dir.remove()
  })

  it("beyond the bound an order is 503 overloaded with Retry-After, nothing taken or written, and the same key later places it", async () => {
    const a = await newBook(inventory.url, 10)
    // the pre-checks take 600 ms: two orders are in flight while the third arrives
    await addFault(inventory.url, { route: "getStock", bookId: a, fault: { kind: "latency", ms: 600 }, times: 2 })
    const keys = [randomUUID(), randomUUID(), randomUUID()]
    const slow = keys.slice(0, 2).map((key) => request(`${api.url}/orders`, { body: orderBody([[a, 1, 2]]), headers: { "Idempotency-Key": key } }))
    await new Promise((resolve) => setTimeout(resolve, 200))
    const shed = await request(`${api.url}/orders`, { body: orderBody([[a, 1, 2]]), headers: { "Idempotency-Key": keys[2]! } })
    expect(shed.status).toBe(503)
    expect(shed.headers.get("retry-after")).toBe("1")
    expect(shed.body).toMatchObject({ error: "overloaded" })
    expect((await Promise.all(slow)).map((r) => r.status)).toEqual([201, 201])
    expect(await stockOf(inventory.url, a)).toBe(8)
    // the key was never claimed: the retry places the order
    const retried = await request(`${api.url}/orders`, { body: orderBody([[a, 1, 2]]), headers: { "Idempotency-Key": keys[2]! } })
    expect(retried.status).toBe(201)
    expect(await stockOf(inventory.url, a)).toBe(7)
  })

  it("a place is given back when its client hangs up, and when its request fails, not only when its saga ends", async () => {
    const a = await newBook(inventory.url, 10)
    await addFault(inventory.url, { route: "getStock", bookId: a, fault: { kind: "latency", ms: 600 }, times: 2 })
    // two orders whose clients leave after 150 ms, their sagas going on for ~450 ms more
    const left = [0, 1].map(() => placeAndLeave(api.url, orderBody([[a, 1, 2]]), randomUUID(), 150))
    expect(await Promise.all(left)).toEqual(["left", "left"])
    // the api sees them leave within moments (on other connections than the next requests'), long
    // before their sagas end: a bad request is then answered 400, not 503
    const leftAt = Date.now()
    let status = 0
    while (Date.now() - leftAt < 300 && (status = (await request(`${api.url}/orders`, { raw: "{" })).status) !== 400) {
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    expect(status).toBe(400)
    // a second bad request: its place was given back too
    expect((await request(`${api.url}/orders`, { raw: "{" })).status).toBe(400)
    // the two sagas are still running, yet an order is admitted
    const admitted = await request(`${api.url}/orders`, { body: orderBody([[a, 1, 2]]) })
    expect(admitted.status).toBe(201)
    expect(await eventually(async () => (await stockOf(inventory.url, a)) === 7, 3_000)).toBe(true)
  })
})
