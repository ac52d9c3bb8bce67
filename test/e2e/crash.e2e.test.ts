import Database from "better-sqlite3"
import { randomUUID } from "node:crypto"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { orderBody, request, type Running, setStock, startApi, startFakeInventory, stockOf, tempDir } from "./harness.js"

/** Orders and their lines as the api's SQLite file holds them. */
/** The stock states journaled for `orderId`'s lines, in line order. */
const lineStatesOf = (dbFile: string, orderId: string) => {
  const db = new Database(dbFile, { readonly: true })
  try {
    return db
      .prepare<[string], { stock_state: string }>("SELECT stock_state FROM order_items WHERE order_id = ? ORDER BY line_no")
      .all(orderId)
      .map((row) => row.stock_state)
  } finally {
    db.close()
  }
}

const readOrders = (dbFile: string) => {
  const db = new Database(dbFile, { readonly: true })
  try {
    return db
      .prepare<[], { id: string; status: string; idempotency_key: string | null; payment_state: string }>(
        "SELECT id, status, idempotency_key, payment_state FROM orders ORDER BY created_at"
      )
      .all()
  } finally {
    db.close()
  }
}

const waitFor = async <T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number): Promise<T> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error("timed out waiting")
    await new Promise((r) => setTimeout(r, 200))
  }
}

// Fast recovery for the test: a 1 s lease, a pass every 0.3 s.
const RECOVERY = { RECOVERY_LEASE_SECONDS: "1", RECOVERY_INTERVAL_SECONDS: "0.3" }

describe("the api killed with SIGKILL mid-saga, then restarted", () => {
  let inventory: Running
  const dir = tempDir()
  beforeAll(async () => {
    inventory = await startFakeInventory()
  })
  afterAll(async () => {
    await inventory?.stop()
    dir.remove()
  })

  const crashThenRecover = async (point: "after-take" | "after-payment", dbName: string) => {
    const [a, b] = [randomUUID(), randomUUID()]
    await setStock(inventory.url, a, 10)
    await setStock(inventory.url, b, 10)
    const env = { ...RECOVERY, DATABASE_URL: `sqlite:///${join(dir.dir, dbName)}` }
    const dying = await startApi(inventory.url, dir.dir, { ...env, CHECKOUT_TEST_CRASH_POINT: point })
    const key = randomUUID()
    const body = orderBody([[a, 2, 3], [b, 3, 4]])
    const lost = await request(`${dying.url}/orders`, { body, headers: { "Idempotency-Key": key } }).catch((e: unknown) => e)
    expect(lost).toBeInstanceOf(Error) // the connection died with the process
    await dying.stop()
    expect(dying.child.signalCode).toBe("SIGKILL")
    const crashed = readOrders(join(dir.dir, dbName))
    expect(crashed.map((o) => o.status)).toEqual(["PENDING"])
    // both takes were applied before the crash; the journal says `pending` (after-take: the
    // `taken` marks were not written yet) or `taken` (after-payment)
    expect([await stockOf(inventory.url, a), await stockOf(inventory.url, b)]).toEqual([8, 7])
    const journaled = lineStatesOf(join(dir.dir, dbName), crashed[0]?.id ?? "")
    expect(journaled).toEqual(point === "after-take" ? ["pending", "pending"] : ["taken", "taken"])
    const api = await startApi(inventory.url, dir.dir, env, dying.port)
    try {
      const final = await waitFor(() => {
        const [order] = readOrders(join(dir.dir, dbName))
        return order !== undefined && order.status !== "PENDING" ? order : undefined
      }, 20_000)
      return { api, a, b, key, body, final }
    } catch (e) {
      await api.stop()
      throw e
    }
  }

  it("after a take, before payment: recovery gives the stock back and cancels; the key then places a fresh order", async () => {
    const { api, a, b, key, body, final } = await crashThenRecover("after-take", "take.db")
    try {
      expect(final.status).toBe("CANCELLED")
      expect([await stockOf(inventory.url, a), await stockOf(inventory.url, b)]).toEqual([10, 10])
      const retry = await request(`${api.url}/orders`, { body, headers: { "Idempotency-Key": key } })
      expect(retry.status).toBe(201)
      expect([await stockOf(inventory.url, a), await stockOf(inventory.url, b)]).toEqual([8, 7])
    } finally {
      await api.stop()
    }
  })

  it("after payment, before confirm: recovery confirms; stock taken exactly once; the key replays the order", async () => {
    const { api, a, b, key, body, final } = await crashThenRecover("after-payment", "paid.db")
    try {
      expect(final.status).toBe("CONFIRMED")
      expect([await stockOf(inventory.url, a), await stockOf(inventory.url, b)]).toEqual([8, 7])
      const replay = await request(`${api.url}/orders`, { body, headers: { "Idempotency-Key": key } })
      expect(replay.status).toBe(200)
      expect(replay.headers.get("idempotent-replayed")).toBe("true")
      expect(replay.body).toMatchObject({ orderId: final.id, status: "CONFIRMED", total: 18 })
      expect([await stockOf(inventory.url, a), await stockOf(inventory.url, b)]).toEqual([8, 7])
    } finally {
      await api.stop()
    }
  })
})
