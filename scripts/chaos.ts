/**
 * `npm run chaos`: the fake inventory with random faults (latency, 5xx, resets, apply-then-fail),
 * the api, many orders from concurrent clients that retry with the same key, the api killed with
 * SIGKILL and restarted several times; then, once recovery has settled every order, the
 * invariant is checked against the fake's stock:
 *
 *   for every book: stock before - stock after = sum of qty over CONFIRMED orders' lines,
 *   no order PENDING, and no idempotency key with more than one decided (CONFIRMED or
 *   PAYMENT_FAILED) order.
 *
 * Prints one summary line and exits 1 when the invariant fails.
 * Options: --orders N (2000) --clients N (16) --crashes N (3) --seed N (random).
 */
import Database from "better-sqlite3"
import { randomUUID } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { Schema } from "effect"
import { type Running, startProcess } from "./lib/processes.js"

/** What a chaos run does. */
export interface ChaosOptions {
  readonly orders: number
  readonly clients: number
  readonly crashes: number
  readonly seed: number
  /** Books in the seeded catalog and copies of each. */
  readonly books?: number
  readonly stockPerBook?: number
}

/** What a chaos run saw and whether the invariant held. */
export interface ChaosSummary {
  readonly ordersSent: number
  readonly confirmed: number
  readonly paymentFailed: number
  readonly cancelled: number
  readonly pending: number
  readonly faultsInjected: number
  readonly crashes: number
  readonly invariantOk: boolean
  readonly problems: ReadonlyArray<string>
}

/** A small deterministic PRNG (mulberry32), so a failing run can be repeated with its seed. */
export const prng = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

type Fault = Record<string, string | number>

/** A long random fault sequence for one route: mostly no fault. */
const faultSequence = (random: () => number, length: number, table: ReadonlyArray<readonly [number, Fault]>) =>
  Array.from({ length }, (): Fault => {
    let roll = random()
    for (const [p, fault] of table) {
      if (roll < p) return fault
      roll -= p
    }
    return { kind: "none" }
  })

const Stats = Schema.Struct({ faultsInjected: Schema.Record({ key: Schema.String, value: Schema.Number }) })
const Stock = Schema.Struct({ inventory: Schema.Struct({ quantity_available: Schema.Number }) })

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Runs one chaos experiment end to end and returns its summary. */
export const runChaos = async (options: ChaosOptions): Promise<ChaosSummary> => {
  const random = prng(options.seed)
  const dir = mkdtempSync(join(tmpdir(), "checkout-chaos-"))
  const bookCount = options.books ?? 12
  const stockPerBook = options.stockPerBook ?? Math.ceil((options.orders * 3) / bookCount)
  const books = Array.from({ length: bookCount }, () => randomUUID())
  const seedFile = join(dir, "seed.json")
  writeFileSync(
    seedFile,
    JSON.stringify(books.map((bookId, i) => ({ bookId, title: `Chaos ${i}`, price: "9.99", quantity: stockPerBook })))
  )
  const dbFile = join(dir, "checkout.db")
  const running: Array<Running> = []
  try {
    const inventory = await startProcess("src/bin/fake-inventory.ts", {
      FAKE_INVENTORY_FAULTS: "1",
      FAKE_INVENTORY_SEED: seedFile
    })
    running.push(inventory)
    const length = options.orders * 4
    const rules = [
      {
        route: "adjust",
        sequence: faultSequence(random, length, [
          [0.03, { kind: "applyThenFail", then: "500" }],
          [0.03, { kind: "applyThenFail", then: "drop" }],
          [0.03, { kind: "status", status: 503 }],
          [0.02, { kind: "reset" }],
          [0.05, { kind: "latency", ms: 40 }]
        ])
      },
      {
        route: "getStock",
        sequence: faultSequence(random, length, [
          [0.03, { kind: "status", status: 500 }],
          [0.02, { kind: "reset" }],
          [0.05, { kind: "latency", ms: 30 }]
        ])
      },
      { route: "transactions", sequence: faultSequence(random, length, [[0.03, { kind: "status", status: 500 }]]) }
    ]
    for (const rule of rules) {
      const res = await fetch(`${inventory.url}/__faults`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(rule)
      })
      if (!res.ok) throw new Error(`fault rule refused: ${res.status} ${await res.text()}`)
    }
    const stockBefore = new Map<string, number>(books.map((b) => [b, stockPerBook]))

    const apiEnv = {
      INVENTORY_BASE_URL: inventory.url,
      DATABASE_URL: `sqlite:///${dbFile}`,
      PAYMENT_SUCCESS_RATIO: "0.9",
      REQUEST_TIMEOUT_SECONDS: "1",
      RECOVERY_LEASE_SECONDS: "2",
      RECOVERY_INTERVAL_SECONDS: "0.5",
      CIRCUIT_BREAKER_FAILURES: "1000",
      LOG_LEVEL: "ERROR"
    }
    let api = await startProcess("src/bin/api.ts", apiEnv)
    const apiPort = api.port
    running.push(api)

    // clients: each order gets a key; a lost answer, a 5xx or "in progress" is retried with the same key
    let sent = 0
    let crashes = 0
    const crashEvery = Math.floor(options.orders / (options.crashes + 1))
    let restarting: Promise<void> | undefined
    const post = async (body: unknown, key: string) => {
      for (let attempt = 0; attempt < 40; attempt++) {
        if (restarting !== undefined) await restarting
        try {
          const res = await fetch(`http://127.0.0.1:${apiPort}/orders`, {
            method: "POST",
            headers: { "content-type": "application/json", "idempotency-key": key },
            body: JSON.stringify(body),
            signal: AbortSignal.timeout(15_000)
          })
          await res.arrayBuffer()
          if (res.status < 500 && res.status !== 409) return res.status
          if (res.status === 409 && res.headers.get("retry-after") === null) return res.status
        } catch {
          // connection refused or reset while the api restarts
        }
        await sleep(100 + Math.floor(random() * 200))
      }
      return 0
    }
    const client = async () => {
      for (;;) {
        const n = sent++
        if (n >= options.orders) return
        if (crashEvery > 0 && n > 0 && n % crashEvery === 0 && crashes < options.crashes) {
          crashes++
          const dying = api
          restarting = (async () => {
            await dying.kill()
            api = await startProcess("src/bin/api.ts", apiEnv, apiPort)
            running.push(api)
          })()
          await restarting
          restarting = undefined
        }
        const lines = 1 + Math.floor(random() * 3)
        const picked = [...books].sort(() => random() - 0.5).slice(0, lines)
        const body = {
          userId: `chaos-${n % 50}`,
          items: picked.map((bookId) => ({ bookId, qty: 1 + Math.floor(random() * 3), unitPrice: "9.99" }))
        }
        const key = randomUUID()
        await post(body, key)
        if (random() < 0.1) await post(body, key) // a client that retries a request it already got an answer for
      }
    }
    await Promise.all(Array.from({ length: options.clients }, client))

    // let recovery settle everything still PENDING
    const deadline = Date.now() + 120_000
    const countPending = () => {
      const db = new Database(dbFile, { readonly: true })
      try {
        return db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM orders WHERE status = 'PENDING'").get()?.n ?? 0
      } finally {
        db.close()
      }
    }
    while (countPending() > 0 && Date.now() < deadline) await sleep(500)
    await api.stop()

    const stats = Schema.decodeUnknownSync(Stats)(await (await fetch(`${inventory.url}/__stats`)).json())
    await fetch(`${inventory.url}/__faults`, { method: "DELETE" }) // read the final stock without faults
    const faultsInjected = Object.values(stats.faultsInjected).reduce((a, b) => a + b, 0)
    const stockAfter = new Map<string, number>()
    for (const book of books) {
      const body = Schema.decodeUnknownSync(Stock)(await (await fetch(`${inventory.url}/api/v1/inventory/${book}`)).json())
      stockAfter.set(book, body.inventory.quantity_available)
    }

    const db = new Database(dbFile, { readonly: true })
    const problems: Array<string> = []
    let counts: Record<string, number> = {}
    try {
      counts = Object.fromEntries(
        db
          .prepare<[], { status: string; n: number }>("SELECT status, COUNT(*) AS n FROM orders GROUP BY status")
          .all()
          .map((r) => [r.status, r.n])
      )
      const taken = new Map<string, number>(
        db
          .prepare<[], { book_id: string; qty: number }>(
            "SELECT i.book_id, SUM(i.qty) AS qty FROM order_items i JOIN orders o ON o.id = i.order_id WHERE o.status = 'CONFIRMED' GROUP BY i.book_id"
          )
          .all()
          .map((r) => [r.book_id, r.qty])
      )
      for (const book of books) {
        const delta = (stockBefore.get(book) ?? 0) - (stockAfter.get(book) ?? 0)
        if (delta !== (taken.get(book) ?? 0)) {
          problems.push(`book ${book}: stock fell by ${delta} but CONFIRMED orders hold ${taken.get(book) ?? 0}`)
        }
      }
      const doubled = db
        .prepare<[], { user_id: string; idempotency_key: string; n: number }>(
          `SELECT user_id, idempotency_key, COUNT(*) AS n FROM orders
           WHERE idempotency_key IS NOT NULL AND status IN ('CONFIRMED', 'PAYMENT_FAILED')
           GROUP BY user_id, idempotency_key HAVING COUNT(*) > 1`
        )
        .all()
      for (const d of doubled) problems.push(`key ${d.user_id}/${d.idempotency_key} decided ${d.n} orders`)
    } finally {
      db.close()
    }
    const pending = counts["PENDING"] ?? 0
    if (pending > 0) problems.push(`${pending} orders still PENDING`)
    return {
      ordersSent: Math.min(sent, options.orders),
      confirmed: counts["CONFIRMED"] ?? 0,
      paymentFailed: counts["PAYMENT_FAILED"] ?? 0,
      cancelled: counts["CANCELLED"] ?? 0,
      pending,
      faultsInjected,
      crashes,
      invariantOk: problems.length === 0,
      problems
    }
  } finally {
    await Promise.all(running.map((p) => p.stop()))
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The one summary line. */
export const formatSummary = (s: ChaosSummary, seed: number) =>
  `chaos: orders sent ${s.ordersSent}, CONFIRMED ${s.confirmed}, PAYMENT_FAILED ${s.paymentFailed}, ` +
  `CANCELLED ${s.cancelled}, faults injected ${s.faultsInjected}, crashes ${s.crashes}, ` +
  `invariant ${s.invariantOk ? "OK" : "FAIL"} (seed ${seed})`

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      orders: { type: "string", default: "2000" },
      clients: { type: "string", default: "16" },
      crashes: { type: "string", default: "3" },
      seed: { type: "string" }
    }
  })
  const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31)
  const summary = await runChaos({
    orders: Number(values.orders),
    clients: Number(values.clients),
    crashes: Number(values.crashes),
    seed
  })
  process.stdout.write(`${formatSummary(summary, seed)}\n`)
  for (const p of summary.problems) process.stdout.write(`  ${p}\n`)
  process.exit(summary.invariantOk ? 0 : 1)
}
