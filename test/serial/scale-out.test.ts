/**
 * Scale-out on one Postgres (issue 5): 3 api replicas and 2 outbox workers on one fresh schema, a
 * fake inventory, and a webhook receiver in this process. A client sends 1,000 orders round-robin
 * across the replicas (24 in flight), each with a fresh Idempotency-Key; every tenth is sent twice
 * at the same moment, with the same key, to two different replicas. Then, once no order is PENDING
 * and the outbox is drained: exactly one order per key, the duplicate pairs answered one 201 and
 * one replay (200, or 409 `idempotency_in_progress` and then 200 after Retry-After), each book's
 * stock fell by exactly its CONFIRMED quantities, and every CONFIRMED order's event arrived exactly
 * once. Needs `TEST_DATABASE_URL`; runs in the serial suite because it loads the machine.
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Effect, Either, Layer, ManagedRuntime, Redacted, Schema } from "effect"
import { randomUUID } from "node:crypto"
import { createServer, type Server } from "node:http"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createTestSchema, dropTestSchema, testPostgresUrl } from "../support/databases.js"
import { runToExit, waitFor } from "../support/process.js"
import { prng } from "../../scripts/chaos.js"
import { freePort, request, type Running, setStock, startFakeInventory, startProcess, stockOf } from "../e2e/harness.js"

const ORDERS = 1_000
/** Every DUPLICATE_EVERY-th order is sent twice at once (10%). */
const DUPLICATE_EVERY = 10
const IN_FLIGHT = 24
const REPLICAS = 3
const WORKERS = 2
const BOOKS = 20
const INITIAL_STOCK = 1_000_000
const USERS = 50
/** Postgres connections kept free for this test's own pool, psql sessions and the like. */
const SPARE_CONNECTIONS = 6
const SEED = 5

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const OrderBody = Schema.Struct({ orderId: Schema.String, status: Schema.String })
const ErrorBody = Schema.Struct({ error: Schema.String })
const Delivered = Schema.Struct({ id: Schema.String, type: Schema.String, data: Schema.Struct({ orderId: Schema.String }) })
const WorkerHealth = Schema.Struct({
  events: Schema.Struct({ published: Schema.Number, failed: Schema.Number, dead: Schema.Number, leaseLost: Schema.Number }),
  outbox: Schema.Struct({ pending: Schema.Number, dead: Schema.Number })
})
const decodeOrder = Schema.decodeUnknownEither(OrderBody)
const decodeError = Schema.decodeUnknownEither(ErrorBody)
const decodeDelivered = Schema.decodeUnknownSync(Schema.parseJson(Delivered))
const decodeWorkerHealth = Schema.decodeUnknownSync(WorkerHealth)

/** What one answer said, reduced to what the checks need. */
interface Answer {
  readonly status: number
  readonly orderId: string | undefined
  readonly error: string | undefined
  readonly replayed: boolean
  readonly retryAfterSeconds: number | undefined
  readonly text: string
}

type OrderRequest = ReturnType<typeof makeOrder>

const makeOrder = (random: () => number, books: ReadonlyArray<string>, i: number) => {
  const lines = 1 + Math.floor(random() * 3)
  const start = Math.floor(random() * books.length)
  return {
    userId: `reader-${i % USERS}`,
    items: Array.from({ length: lines }, (_, k) => ({
      bookId: books[(start + k * 7) % books.length] ?? "",
      qty: 1 + Math.floor(random() * 5),
      unitPrice: Math.round(100 + random() * 4900) / 100
    }))
  }
}

const post = async (replica: Running, body: OrderRequest, key: string): Promise<Answer> => {
  const res = await request(`${replica.url}/orders`, { body, headers: { "Idempotency-Key": key } })
  const order = decodeOrder(res.body)
  const error = decodeError(res.body)
  const retryAfter = res.headers.get("retry-after")
  return {
    status: res.status,
    orderId: Either.isRight(order) ? order.right.orderId : undefined,
    error: Either.isRight(error) ? error.right.error : undefined,
    replayed: res.headers.get("idempotent-replayed") === "true",
    retryAfterSeconds: retryAfter === null ? undefined : Number(retryAfter),
    text: JSON.stringify(res.body)
  }
}

/** A webhook receiver that answers 204 to every delivery and records each one's event id and order id. */
const startReceiver = async () => {
  const deliveries: Array<{ readonly key: string; readonly eventId: string; readonly type: string; readonly orderId: string }> = []
  const server: Server = createServer((req, res) => {
    let body = ""
    req.on("data", (chunk: Buffer) => (body += chunk.toString()))
    req.on("end", () => {
      try {
        const event = decodeDelivered(body)
        deliveries.push({
          key: String(req.headers["idempotency-key"] ?? ""),
          eventId: event.id,
          type: event.type,
          orderId: event.data.orderId
        })
      } catch {
        deliveries.push({ key: String(req.headers["idempotency-key"] ?? ""), eventId: "", type: "unreadable", orderId: "" })
      }
      res.writeHead(204).end()
    })
  })
  const port = await freePort()
  await new Promise<void>((ok) => server.listen(port, "127.0.0.1", ok))
  return {
    url: `http://127.0.0.1:${port}/events`,
    deliveries,
    close: () => new Promise<void>((ok) => server.close(() => ok()))
  }
}

describe.runIf(testPostgresUrl !== undefined)("scale-out: 3 api replicas and 2 outbox workers on one Postgres", () => {
  const base = testPostgresUrl ?? ""
  let schema = ""
  let url = ""
  let poolSize = 0
  let db: ManagedRuntime.ManagedRuntime<SqlClient.SqlClient, unknown> | undefined
  let receiver: Awaited<ReturnType<typeof startReceiver>> | undefined
  let inventory: Running | undefined
  const replicas: Array<Running> = []
  const workers: Array<Running> = []
  let started = 0

  const query = <A extends object>(run: (sql: SqlClient.SqlClient) => Effect.Effect<ReadonlyArray<A>, unknown>) => {
    if (db === undefined) throw new Error("no database")
    return db.runPromise(Effect.flatMap(SqlClient.SqlClient, run))
  }

  beforeAll(async () => {
    started = Date.now()
    const made = await Effect.runPromise(createTestSchema(base))
    schema = made.schema
    url = made.url
    db = ManagedRuntime.make(PgClient.layer({ url: Redacted.make(url), maxConnections: 2 }).pipe(Layer.orDie))

    // Pools times processes must stay under the server's connection limit.
    const [limits] = await query((sql) => sql<{ max: number; reserved: number; used: number }>`
      SELECT current_setting('max_connections')::int AS max,
             current_setting('superuser_reserved_connections')::int AS reserved,
             (SELECT count(*)::int FROM pg_stat_activity) AS used`)
    if (limits === undefined) throw new Error("no connection limits")
    poolSize = Math.min(8, Math.floor((limits.max - limits.reserved - limits.used - SPARE_CONNECTIONS) / (REPLICAS + WORKERS)))
    if (poolSize < 2) throw new Error(`too few free Postgres connections for ${REPLICAS + WORKERS} processes: ${JSON.stringify(limits)}`)

    const migrated = await runToExit("src/bin/migrate.ts", { DATABASE_URL: url, DATABASE_POOL_SIZE: "2" })
    expect(migrated.code, migrated.output).toBe(0)

    receiver = await startReceiver()
    inventory = await startFakeInventory()
    const common = { DATABASE_URL: url, DATABASE_POOL_SIZE: String(poolSize) }
    const keep = (list: Array<Running>) => (p: Running) => {
      list.push(p)
      return p
    }
    const spawned = await Promise.allSettled([
      ...Array.from({ length: REPLICAS }, () =>
        startProcess("src/bin/api.ts", { ...common, INVENTORY_BASE_URL: inventory?.url ?? "", MIGRATE_ON_START: "false" }).then(keep(replicas))
      ),
      ...Array.from({ length: WORKERS }, (_, w) =>
        startProcess("src/bin/worker.ts", {
          ...common,
          EVENTS_WEBHOOK_URL: receiver?.url ?? "",
          OUTBOX_WORKER_ID: `scale-out-worker-${w + 1}`,
          OUTBOX_POLL_INTERVAL_SECONDS: "0.1"
        }).then(keep(workers))
      )
    ])
    // Whatever started is in `replicas` and `workers`, for afterAll to kill.
    for (const s of spawned) if (s.status === "rejected") throw s.reason
  }, 90_000)

  afterAll(async () => {
    await Promise.all([...replicas, ...workers].map((p) => p.kill()))
    await inventory?.kill()
    await receiver?.close()
    await db?.dispose()
    if (schema !== "") await Effect.runPromise(dropTestSchema(base, schema))
  })

  it("one order per key, stock taken exactly for CONFIRMED orders, each CONFIRMED order's event delivered once", async ({ onTestFailed }) => {
    onTestFailed(() => {
      const all = [...replicas.map((p) => ({ name: "api", p })), ...workers.map((p) => ({ name: "worker", p }))]
      for (const { name, p } of all) process.stdout.write(`--- ${name} ${p.url}, last output:\n${p.output().slice(-3000)}\n`)
    })
    const inv = inventory
    const rec = receiver
    if (inv === undefined || rec === undefined) throw new Error("set-up failed")
    const books = Array.from({ length: BOOKS }, () => randomUUID())
    for (const book of books) await setStock(inv.url, book, INITIAL_STOCK)

    const random = prng(SEED)
    const orders = Array.from({ length: ORDERS }, (_, i) => ({ i, key: randomUUID(), body: makeOrder(random, books, i) }))
    const singles = new Map<string, Answer>() // key -> answer
    const pairs = new Map<string, { readonly first: Answer; readonly second: Answer; readonly retries: ReadonlyArray<Answer> }>()
    let inProgress = 0

    /** Retries a 409 `idempotency_in_progress` after its Retry-After until it is answered otherwise. */
    const settle = async (answer: Answer, replica: Running, order: (typeof orders)[number]) => {
      const retries: Array<Answer> = []
      let last = answer
      while (last.status === 409 && last.error === "idempotency_in_progress" && retries.length < 20) {
        await sleep((last.retryAfterSeconds ?? 1) * 1000)
        last = await post(replica, order.body, order.key)
        retries.push(last)
      }
      return retries
    }

    const sendStarted = Date.now()
    let next = 0
    const client = async () => {
      for (let n = next++; n < orders.length; n = next++) {
        const order = orders[n]
        if (order === undefined) break
        const replica = replicas[order.i % REPLICAS]
        const other = replicas[(order.i + 1) % REPLICAS]
        if (replica === undefined || other === undefined) throw new Error("no replica")
        if (order.i % DUPLICATE_EVERY !== 0) {
          singles.set(order.key, await post(replica, order.body, order.key))
          continue
        }
        const [first, second] = await Promise.all([post(replica, order.body, order.key), post(other, order.body, order.key)])
        const retries = [...(await settle(first, replica, order)), ...(await settle(second, other, order))]
        if (first.status === 409 || second.status === 409) inProgress++
        pairs.set(order.key, { first, second, retries })
      }
    }
    await Promise.all(Array.from({ length: IN_FLIGHT }, client))
    const sendSeconds = (Date.now() - sendStarted) / 1000

    // Every order settled and every event delivered.
    await waitFor(
      async () => {
        const [row] = await query((sql) => sql<{ pending: number; undelivered: number }>`
          SELECT (SELECT count(*)::int FROM orders WHERE status = 'PENDING') AS pending,
                 (SELECT count(*)::int FROM outbox_events WHERE processed_at IS NULL) AS undelivered`)
        return row !== undefined && row.pending === 0 && row.undelivered === 0 ? row : undefined
      },
      60_000,
      "no PENDING order and an empty outbox"
    )
    const healths = await Promise.all(
      workers.map(async (w) => decodeWorkerHealth(await (await fetch(`${w.url}/health`)).json()))
    )

    // The client's view: every single send created its order; every pair one 201 and one replay.
    const unexpectedSingles = [...singles].filter(([, a]) => a.status !== 201 || a.orderId === undefined)
    expect(unexpectedSingles.slice(0, 5)).toEqual([])
    let replays = 0
    const pairProblems: Array<unknown> = []
    const orderIdOfKey = new Map<string, string>()
    for (const [key, a] of singles) if (a.orderId !== undefined) orderIdOfKey.set(key, a.orderId)
    for (const [key, { first, retries, second }] of pairs) {
      const created = [first, second].filter((a) => a.status === 201)
      const loser = first.status === 201 ? second : first
      const settled = loser.status === 409 ? retries[retries.length - 1] : loser
      if (loser.status === 200) replays++
      const ok =
        created.length === 1 &&
        created[0]?.orderId !== undefined &&
        ((loser.status === 200 && loser.replayed) || (loser.status === 409 && loser.error === "idempotency_in_progress")) &&
        settled !== undefined &&
        settled.status === 200 &&
        settled.replayed &&
        settled.orderId === created[0]?.orderId
      if (!ok) pairProblems.push({ key, first, second, retries })
      if (created[0]?.orderId !== undefined) orderIdOfKey.set(key, created[0].orderId)
    }
    expect(pairProblems.slice(0, 5)).toEqual([])
    expect(pairs.size).toBe(ORDERS / DUPLICATE_EVERY)

    // The database's view: exactly one order per key, the one the client was told about.
    const perKey = await query((sql) => sql<{ user_id: string; idempotency_key: string | null; id: string; n: number }>`
      SELECT user_id, idempotency_key, min(id) AS id, count(*)::int AS n FROM orders GROUP BY user_id, idempotency_key`)
    expect(perKey.filter((r) => r.n !== 1 || r.idempotency_key === null)).toEqual([])
    expect(perKey).toHaveLength(ORDERS)
    const keyOfOrder = new Map<string, string>(orders.map((o) => [o.key, o.body.userId]))
    for (const row of perKey) {
      expect(row.user_id).toBe(keyOfOrder.get(row.idempotency_key ?? ""))
      expect(row.id).toBe(orderIdOfKey.get(row.idempotency_key ?? ""))
    }
    const statuses = await query((sql) => sql<{ status: string; n: number }>`
      SELECT status, count(*)::int AS n FROM orders GROUP BY status`)
    const confirmedCount = statuses.find((s) => s.status === "CONFIRMED")?.n ?? 0
    expect(statuses).toEqual([{ status: "CONFIRMED", n: ORDERS }])

    // Stock: each book fell by exactly the quantities of its CONFIRMED lines.
    const taken = await query((sql) => sql<{ book_id: string; qty: number }>`
      SELECT i.book_id, sum(i.qty)::int AS qty FROM order_items i JOIN orders o ON o.id = i.order_id
      WHERE o.status = 'CONFIRMED' GROUP BY i.book_id`)
    const takenOf = new Map(taken.map((t) => [t.book_id, t.qty]))
    const requested = new Map<string, number>()
    for (const o of orders) for (const item of o.body.items) requested.set(item.bookId, (requested.get(item.bookId) ?? 0) + item.qty)
    for (const book of books) {
      const fell = INITIAL_STOCK - (await stockOf(inv.url, book))
      expect({ book, fell }).toEqual({ book, fell: takenOf.get(book) ?? 0 })
      expect({ book, fell }).toEqual({ book, fell: requested.get(book) ?? 0 })
    }

    // Events: one order.created per CONFIRMED order, no event id delivered twice, all marked delivered.
    const deliveries = rec.deliveries
    const timesById = new Map<string, number>()
    for (const d of deliveries) timesById.set(d.eventId, (timesById.get(d.eventId) ?? 0) + 1)
    expect([...timesById].filter(([, n]) => n > 1)).toEqual([])
    expect(deliveries.filter((d) => d.key !== d.eventId || d.type !== "order.created")).toEqual([])
    const deliveredOrders = new Set(deliveries.map((d) => d.orderId))
    expect(deliveredOrders.size).toBe(confirmedCount)
    expect(deliveredOrders).toEqual(new Set(perKey.map((r) => r.id)))
    const outbox = await query((sql) => sql<{ id: string }>`SELECT id FROM outbox_events`)
    expect(new Set(outbox.map((r) => r.id))).toEqual(new Set(timesById.keys()))
    expect(healths.map((h) => h.outbox)).toEqual(workers.map(() => ({ pending: 0, dead: 0 })))
    expect(healths.reduce((n, h) => n + h.events.published, 0)).toBe(deliveries.length)
    expect(healths.map((h) => h.events.failed + h.events.dead + h.events.leaseLost)).toEqual(workers.map(() => 0))
    // The two workers shared the work.
    expect(healths.every((h) => h.events.published > 0)).toBe(true)

    const seconds = ((Date.now() - started) / 1000).toFixed(1)
    process.stdout.write(
      `scale-out: orders ${ORDERS}, confirmed ${confirmedCount}, duplicates sent ${pairs.size}, replays ${replays}, ` +
        `in-progress ${inProgress}, events ${deliveries.length} (per worker ${healths.map((h) => h.events.published).join("/")}), ` +
        `sending ${sendSeconds.toFixed(1)} s, total ${seconds} s (pool ${poolSize} x ${REPLICAS + WORKERS})\n`
    )
  }, 150_000)
})
