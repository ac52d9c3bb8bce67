/**
 * Restarts the Postgres server under a running api (stop, then start the cluster). Runs alone,
 * after the other suites (see `npm test`), because it takes the database away from everything.
 * Needs `TEST_DATABASE_URL` and the right to run `pg_ctlcluster` (root on CI).
 */
import { execFileSync } from "node:child_process"
import { randomUUID } from "node:crypto"
import { readdirSync } from "node:fs"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createTestSchema, dropTestSchema, testPostgresUrl } from "../support/databases.js"
import { orderBody, request, type Running, setStock, startApi, startFakeInventory, tempDir } from "../e2e/harness.js"

const cluster = () => {
  const versions = readdirSync("/etc/postgresql")
  const version = versions[0]
  if (version === undefined) throw new Error("no PostgreSQL cluster in /etc/postgresql")
  return version
}
const pgctl = (action: "stop" | "start") =>
  execFileSync("pg_ctlcluster", ["--skip-systemctl-redirect", cluster(), "main", action, ...(action === "stop" ? ["-m", "fast"] : [])], {
    stdio: "inherit"
  })

describe.runIf(testPostgresUrl !== undefined)("a Postgres restart under a running api", () => {
  const base = testPostgresUrl ?? ""
  let inventory: Running
  let api: Running
  let schema = ""
  let dir: ReturnType<typeof tempDir> | undefined
  beforeAll(async () => {
    dir = tempDir()
    const made = await Effect.runPromise(createTestSchema(base))
    schema = made.schema
    inventory = await startFakeInventory()
    api = await startApi(inventory.url, dir.dir, { DATABASE_URL: made.url })
  })
  afterAll(async () => {
    await api?.stop()
    await inventory?.stop()
    if (schema !== "") await Effect.runPromise(dropTestSchema(base, schema))
    dir?.remove()
  })

  it("loses no confirmed order, answers 503 (never 500) meanwhile, and serves again within 10 s of the database's return", async () => {
    const book = randomUUID()
    await setStock(inventory.url, book, 100_000)
    const confirmed = new Map<string, string>() // idempotency key -> order id
    const statuses: Array<number> = []
    const place = async () => {
      const key = randomUUID()
      try {
        const res = await request(`${api.url}/orders`, { body: orderBody([[book, 1, 1]]), headers: { "Idempotency-Key": key } })
        statuses.push(res.status)
        if (res.status === 201) confirmed.set(key, (res.body as { orderId: string }).orderId)
      } catch {
        statuses.push(0)
      }
    }
    for (let i = 0; i < 20; i++) await place()
    let running = true
    const load = (async () => {
      while (running) {
        await place()
        await new Promise((r) => setTimeout(r, 20))
      }
    })()
    await new Promise((r) => setTimeout(r, 300))
    let stopped = false
    try {
      pgctl("stop")
      stopped = true
      await new Promise((r) => setTimeout(r, 2_000))
      const during = await request(`${api.url}/orders`, { body: orderBody([[book, 1, 1]]) })
      expect(during.status).toBe(503)
      expect(during.body).toMatchObject({ error: "service_unavailable" })
      expect((await request(`${api.url}/health`)).status).toBe(503)
    } finally {
      // whatever happened above, the database comes back for everything else
      if (stopped) pgctl("start")
    }
    const back = Date.now()
    let servedAfterMs = -1
    while (Date.now() - back < 15_000) {
      const res = await request(`${api.url}/orders`, { body: orderBody([[book, 1, 1]]) })
      if (res.status === 201) {
        servedAfterMs = Date.now() - back
        break
      }
      await new Promise((r) => setTimeout(r, 200))
    }
    running = false
    await load
    expect(servedAfterMs).toBeGreaterThanOrEqual(0)
    expect(servedAfterMs).toBeLessThanOrEqual(10_000)
    expect(statuses).not.toContain(500)
    for (const [key, orderId] of confirmed) {
      const res = await request(`${api.url}/orders/${orderId}`)
      expect({ key, status: res.status, order: (res.body as { status?: string }).status }).toEqual({
        key,
        status: 200,
        order: "CONFIRMED"
      })
    }
    expect(confirmed.size).toBeGreaterThan(20)
  }, 90_000)
})
