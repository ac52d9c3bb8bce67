/**
 * The hand-written baseline: the checkout saga for `POST /orders` on plain `node:http`,
 * `better-sqlite3` and `undici`, with no framework and no validation library. It exists to show
 * what the framework costs (`npm run bench` runs it beside the product), so it does the same work
 * and writes the same rows, statement for statement:
 *
 *   claim the key (one unique insert) -> pre-check every line (GETs, concurrently) ->
 *   order PENDING + lines (one transaction) -> attach the order to the key ->
 *   per line: take (adjust with note `order:<id>:<line>`) -> journal every line `taken` (one transaction) ->
 *   journal the payment -> CONFIRMED + outbox row (one transaction) -> store the response on the key.
 *
 * Same policy where the happy path pays for it: at most `INVENTORY_MAX_CONCURRENCY` requests in
 * flight to the inventory, a per-attempt timeout, the correlation id forwarded on every call, one
 * JSON access-log line per request plus "order confirmed" (at the default level INFO), the same
 * metrics recorded (not served), the saga's lease heartbeat. Failure
 * paths give stock back in reverse order and release the key; an adjust whose outcome is unknown
 * is journaled `unknown` and left PENDING (the product also looks it up in the inventory's log;
 * the bench injects no faults, so that path never runs here).
 *
 * The database must already have the product's tables (the bench runs the product's migrations
 * against it first). Environment: PORT, HOST (127.0.0.1), INVENTORY_BASE_URL, DATABASE_FILE,
 * INVENTORY_MAX_CONCURRENCY (8), REQUEST_TIMEOUT_SECONDS (2), RETRY_ATTEMPTS (2), RECOVERY_LEASE_SECONDS (30),
 * PAYMENT_SUCCESS_RATIO (1.0), LOG_LEVEL (INFO; anything else but DEBUG/TRACE/ALL/INFO silences
 * the info lines).
 */
import Database from "better-sqlite3"
import { createHash, randomUUID } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import { Pool } from "undici"

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

const env = (name: string, fallback: string): string => {
  const value = process.env[name]
  return value === undefined || value.trim() === "" ? fallback : value.trim()
}
const envNumber = (name: string, fallback: number): number => {
  const value = Number(env(name, String(fallback)))
  if (!Number.isFinite(value)) throw new Error(`${name} must be a number`)
  return value
}

const PORT = envNumber("PORT", 8100)
const HOST = env("HOST", "127.0.0.1")
const INVENTORY = new URL(env("INVENTORY_BASE_URL", "http://localhost:8001"))
const DATABASE_FILE = env("DATABASE_FILE", "./baseline.db")
const MAX_CONCURRENCY = envNumber("INVENTORY_MAX_CONCURRENCY", 8)
const REQUEST_TIMEOUT_MS = Math.round(envNumber("REQUEST_TIMEOUT_SECONDS", 2) * 1000)
const RETRY_ATTEMPTS = envNumber("RETRY_ATTEMPTS", 2)
const PAYMENT_SUCCESS_RATIO = envNumber("PAYMENT_SUCCESS_RATIO", 1)
const LOG_INFO = ["INFO", "DEBUG", "TRACE", "ALL"].includes(env("LOG_LEVEL", "INFO").toUpperCase())
const TTL_MS = 86_400_000
const LEASE_MS = Math.round(envNumber("RECOVERY_LEASE_SECONDS", 30) * 1000)
const STALE_CLAIM_MS = 120_000
const MAX_BODY_BYTES = 64 * 1024
const MAX_LINES = 100
const MAX_QTY = 10_000
const MAX_UNIT_PRICE_CENTS = 100_000_000

// ---------------------------------------------------------------------------------------------
// Logging: one JSON line per event, like the product's Logger.json (console.log, synchronous)
// ---------------------------------------------------------------------------------------------

const log = (level: "INFO" | "ERROR", message: string, annotations: Record<string, unknown>): void => {
  if (level === "INFO" && !LOG_INFO) return
  console.log(JSON.stringify({ message, logLevel: level, timestamp: new Date().toISOString(), annotations }))
}

// ---------------------------------------------------------------------------------------------
// Metrics, kept as the product keeps them (counters and latency histograms by label); the
// baseline records them and serves none, which is what recording costs
// ---------------------------------------------------------------------------------------------

const BUCKETS = Array.from({ length: 15 }, (_, i) => 0.001 * 2 ** i)
const counters = new Map<string, number>()
const histograms = new Map<string, Array<number>>()
const count = (name: string) => counters.set(name, (counters.get(name) ?? 0) + 1)
const observe = (name: string, seconds: number) => {
  let buckets = histograms.get(name)
  if (buckets === undefined) {
    buckets = BUCKETS.map(() => 0)
    histograms.set(name, buckets)
  }
  for (let i = 0; i < BUCKETS.length; i++) if (seconds <= (BUCKETS[i] ?? Infinity)) buckets[i] = (buckets[i] ?? 0) + 1
  count(`${name}_count`)
}

// ---------------------------------------------------------------------------------------------
// The database: the product's tables, WAL mode like @effect/sql-sqlite-node, prepared once
// ---------------------------------------------------------------------------------------------

const db = new Database(DATABASE_FILE)
db.pragma("journal_mode = WAL")

const stmt = {
  claimKey: db.prepare(`INSERT INTO idempotency_keys (user_id, idempotency_key, fingerprint, state, created_at, locked_at, expires_at)
    VALUES (?, ?, ?, 'in_progress', ?, ?, ?) ON CONFLICT (user_id, idempotency_key) DO NOTHING RETURNING user_id`),
  findKey: db.prepare(`SELECT fingerprint, order_id, state, response_status, response_body, locked_at, expires_at
    FROM idempotency_keys WHERE user_id = ? AND idempotency_key = ?`),
  deleteExpiredKey: db.prepare(`DELETE FROM idempotency_keys WHERE user_id = ? AND idempotency_key = ? AND expires_at = ?`),
  takeOverKey: db.prepare(`UPDATE idempotency_keys SET locked_at = ? WHERE user_id = ? AND idempotency_key = ?
    AND state = 'in_progress' AND order_id IS NULL AND locked_at = ? RETURNING user_id`),
  attachOrder: db.prepare(`UPDATE idempotency_keys SET order_id = ? WHERE user_id = ? AND idempotency_key = ? AND fingerprint = ?`),
  completeKey: db.prepare(`UPDATE idempotency_keys SET state = 'completed', response_status = ?, response_body = ?,
    locked_at = NULL, expires_at = ? WHERE user_id = ? AND idempotency_key = ? AND fingerprint = ?`),
  releaseKey: db.prepare(`DELETE FROM idempotency_keys WHERE user_id = ? AND idempotency_key = ? AND fingerprint = ?
    AND state = 'in_progress'`),
  insertOrder: db.prepare(`INSERT INTO orders (id, user_id, idempotency_key, status, total_cents, currency, payment_state, created_at, updated_at, lease_until)
    VALUES (?, ?, ?, 'PENDING', ?, 'USD', 'none', ?, ?, ?)`),
  insertItem: db.prepare(`INSERT INTO order_items (order_id, line_no, book_id, qty, unit_price_cents, line_total_cents, stock_state, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)`),
  setLineState: db.prepare(`UPDATE order_items SET stock_state = ?, updated_at = ? WHERE order_id = ? AND line_no = ?`),
  setPayment: db.prepare(`UPDATE orders SET payment_state = ?, payment_reference = ?, updated_at = ? WHERE id = ?`),
  finish: db.prepare(`UPDATE orders SET status = ?, failure_reason = ?, updated_at = ? WHERE id = ? AND status = 'PENDING' RETURNING id`),
  confirm: db.prepare(`UPDATE orders SET status = 'CONFIRMED', updated_at = ? WHERE id = ? AND status = 'PENDING' RETURNING id`),
  appendOutbox: db.prepare(`INSERT INTO outbox_events (id, aggregate_id, type, payload, created_at, attempts, next_attempt_at)
    VALUES (?, ?, ?, ?, ?, 0, ?)`),
  findOrder: db.prepare(`SELECT id, status, total_cents, created_at FROM orders WHERE id = ?`),
  findItems: db.prepare(`SELECT book_id, qty, unit_price_cents, line_total_cents FROM order_items WHERE order_id = ? ORDER BY line_no`)
}

interface KeyRow {
  readonly fingerprint: string
  readonly order_id: string | null
  readonly state: string
  readonly response_status: number | null
  readonly response_body: string | null
  readonly locked_at: string | null
  readonly expires_at: string
}

const isKeyRow = (row: unknown): row is KeyRow =>
  typeof row === "object" && row !== null && "fingerprint" in row && "state" in row && "expires_at" in row

const insertPending = db.transaction((order: Order, userId: string, scope: Scope | undefined, at: string) => {
  const key = scope?.key ?? null
  // the saga's lease on its PENDING order: recovery leaves it alone until then
  stmt.insertOrder.run(order.orderId, userId, key, order.totalCents, at, at, new Date(Date.parse(at) + LEASE_MS).toISOString())
  order.items.forEach((item, lineNo) =>
    stmt.insertItem.run(order.orderId, lineNo, item.bookId, item.qty, item.unitPriceCents, item.lineTotalCents, at)
  )
  // the key learns which order it made, in the same transaction
  if (scope !== undefined) stmt.attachOrder.run(order.orderId, scope.userId, scope.key, scope.fingerprint)
})

const confirm = db.transaction((order: Order, userId: string, at: string, scope: Scope | undefined, body: OrderJson): boolean => {
  if (stmt.confirm.all(at, order.orderId).length !== 1) return false
  // the event's data, in the product's field order, from the order's JSON already made
  const payload = { orderId: body.orderId, userId, total: body.total, currency: body.currency, items: body.items, createdAt: body.createdAt }
  stmt.appendOutbox.run(randomUUID(), order.orderId, "order.created", JSON.stringify(payload), at, at)
  if (scope !== undefined) {
    const expires = new Date(Date.parse(at) + TTL_MS).toISOString()
    stmt.completeKey.run(201, JSON.stringify({ outcome: "confirmed", order: body }), expires, scope.userId, scope.key, scope.fingerprint)
  }
  return true
})

/** The sagas' heartbeat: one timer extends the lease of every order in flight (as the product's). */
const leasedOrders = new Set<string>()
const extendLeases = (ids: ReadonlyArray<string>, until: string) => {
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500)
    db.prepare(`UPDATE orders SET lease_until = ? WHERE status = 'PENDING' AND id IN (${chunk.map(() => "?").join(", ")})`).run(until, ...chunk)
  }
}
setInterval(() => {
  if (leasedOrders.size > 0) extendLeases([...leasedOrders], new Date(Date.now() + LEASE_MS).toISOString())
}, LEASE_MS / 3).unref()

// ---------------------------------------------------------------------------------------------
// Requests: hand-written validation (the same rules as the product's Schemas)
// ---------------------------------------------------------------------------------------------

interface Line {
  readonly bookId: string
  readonly qty: number
  readonly unitPriceCents: number
}
interface OrderRequest {
  readonly userId: string
  readonly lines: ReadonlyArray<Line>
  readonly idempotencyKey: string | undefined
}
interface Issue {
  readonly field: string
  readonly message: string
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const DECIMAL = /^(\d+)(?:\.(\d+))?$/
const CONTROL_USER = /[\u0000-\u001f\u007f-\u009f]/
const CONTROL_KEY = /[\u0000-\u001f\u007f]/

/** A decimal amount (JSON number or string) in cents, without float arithmetic; a message when invalid. */
const toCents = (value: unknown): number | string => {
  let text: string
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return "must be a decimal number such as 16.99"
    text = String(value)
  } else if (typeof value === "string") {
    text = value.trim()
  } else {
    return "must be a decimal number such as 16.99"
  }
  if (text.startsWith("-")) return "must not be negative"
  const match = DECIMAL.exec(text)
  if (match === null) return "must be a decimal number such as 16.99"
  const fraction = (match[2] ?? "").replace(/0+$/, "")
  if (fraction.length > 2) return "must have at most 2 fraction digits"
  const cents = Number(match[1]) * 100 + Number(fraction.padEnd(2, "0"))
  return cents > MAX_UNIT_PRICE_CENTS ? "must be at most 1000000" : cents
}

const checkKey = (key: unknown, field: string, issues: Array<Issue>): string | undefined => {
  if (typeof key !== "string" || key.length < 1 || key.length > 255 || CONTROL_KEY.test(key)) {
    issues.push({ field, message: "must be 1 to 255 characters without control characters" })
    return undefined
  }
  return key
}

type Decoded = { readonly _tag: "Valid"; readonly request: OrderRequest } | { readonly _tag: "Invalid"; readonly issues: ReadonlyArray<Issue> }

/** Decodes the body of `POST /orders`; every field issue when it is invalid. */
const decodeOrder = (json: unknown, header: string | undefined): Decoded => {
  const issues: Array<Issue> = []
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return { _tag: "Invalid", issues: [{ field: "body", message: "must be a JSON object" }] }
  }
  const body: Record<string, unknown> = { ...json }
  for (const name of Object.keys(body)) {
    if (name !== "userId" && name !== "items" && name !== "idempotencyKey") issues.push({ field: name, message: "is unexpected" })
  }
  const userId = body["userId"]
  if (typeof userId !== "string" || userId.length < 1 || userId.length > 128 || CONTROL_USER.test(userId)) {
    issues.push({ field: "userId", message: "must be 1 to 128 characters without control characters" })
  }
  const items = body["items"]
  const lines: Array<Line> = []
  if (!Array.isArray(items) || items.length < 1 || items.length > MAX_LINES) {
    issues.push({ field: "items", message: `must have 1 to ${MAX_LINES} lines` })
  } else {
    const seen = new Set<string>()
    items.forEach((raw: unknown, i) => {
      if (typeof raw !== "object" || raw === null) return void issues.push({ field: `items[${i}]`, message: "must be an object" })
      const item: Record<string, unknown> = { ...raw }
      for (const name of Object.keys(item)) {
        if (name !== "bookId" && name !== "qty" && name !== "unitPrice") issues.push({ field: `items[${i}].${name}`, message: "is unexpected" })
      }
      const bookId = item["bookId"]
      const qty = item["qty"]
      const cents = toCents(item["unitPrice"])
      if (typeof bookId !== "string" || !UUID.test(bookId)) issues.push({ field: `items[${i}].bookId`, message: "must be a UUID" })
      else if (seen.has(bookId)) issues.push({ field: `items[${i}].bookId`, message: "appears on more than one line" })
      if (typeof qty !== "number" || !Number.isInteger(qty) || qty < 1 || qty > MAX_QTY) {
        issues.push({ field: `items[${i}].qty`, message: `must be an integer from 1 to ${MAX_QTY}` })
      }
      if (typeof cents === "string") issues.push({ field: `items[${i}].unitPrice`, message: cents })
      if (typeof bookId === "string") seen.add(bookId)
      if (typeof bookId === "string" && typeof qty === "number" && typeof cents === "number") {
        lines.push({ bookId, qty, unitPriceCents: cents })
      }
    })
  }
  let key = body["idempotencyKey"] === undefined ? undefined : checkKey(body["idempotencyKey"], "idempotencyKey", issues)
  if (header !== undefined) {
    const fromHeader = checkKey(header, "Idempotency-Key", issues)
    if (key !== undefined && fromHeader !== undefined && key !== fromHeader) {
      issues.push({ field: "idempotencyKey", message: "differs from the Idempotency-Key header" })
    }
    key = fromHeader
  }
  if (issues.length > 0 || typeof userId !== "string") return { _tag: "Invalid", issues }
  return { _tag: "Valid", request: { userId, lines, idempotencyKey: key } }
}

/** SHA-256 of the RFC 8785 canonical JSON of the decoded request, as the product computes it. */
const fingerprint = (request: OrderRequest): string => {
  const items = request.lines
    .map((l) => `{"bookId":${JSON.stringify(l.bookId.toLowerCase())},"qty":${l.qty},"unitPrice":"${centsToString(l.unitPriceCents)}"}`)
    .join(",")
  return createHash("sha256").update(`{"items":[${items}],"userId":${JSON.stringify(request.userId)}}`).digest("hex")
}

const centsToString = (cents: number): string => `${Math.trunc(cents / 100)}.${String(cents % 100).padStart(2, "0")}`
const centsToNumber = (cents: number): number => Number(centsToString(cents))

// ---------------------------------------------------------------------------------------------
// The inventory: one keep-alive pool whose size is the bulkhead
// ---------------------------------------------------------------------------------------------

const pool = new Pool(INVENTORY.origin, {
  connections: MAX_CONCURRENCY,
  pipelining: 1,
  keepAliveTimeout: 10_000,
  connect: { timeout: 1_000 }
})

type Call =
  | { readonly _tag: "Answered"; readonly status: number; readonly body: unknown }
  | { readonly _tag: "Refused"; readonly reason: string }
  | { readonly _tag: "Unknown"; readonly reason: string }

const REFUSED = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "UND_ERR_CONNECT_TIMEOUT"])

const errorCode = (error: unknown): string => {
  let current: unknown = error
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    if ("code" in current && typeof current.code === "string") return current.code
    current = "cause" in current ? current.cause : undefined
  }
  return String(error)
}

const call = async (method: "GET" | "POST", path: string, correlationId: string, body?: string): Promise<Call> => {
  const started = performance.now()
  const result = await send(method, path, correlationId, body)
  const operation = method === "GET" ? "getStock" : "adjust"
  const status = result._tag === "Answered" ? String(result.status) : result._tag
  count(`inventory_requests{operation=${operation},status=${status}}`)
  observe(`inventory_request_duration{operation=${operation}}`, (performance.now() - started) / 1000)
  return result
}

const send = async (method: "GET" | "POST", path: string, correlationId: string, body?: string): Promise<Call> => {
  try {
    const response = await pool.request({
      method,
      path,
      headers: body === undefined
        ? { accept: "application/json", "x-request-id": correlationId }
        : { accept: "application/json", "content-type": "application/json", "x-request-id": correlationId },
      ...(body === undefined ? {} : { body }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)
    })
    const text = await response.body.text()
    let parsed: unknown = null
    try {
      parsed = JSON.parse(text)
    } catch {
      // an unreadable body is classified by its status below
    }
    return { _tag: "Answered", status: response.statusCode, body: parsed }
  } catch (error) {
    const code = errorCode(error)
    return REFUSED.has(code) ? { _tag: "Refused", reason: code } : { _tag: "Unknown", reason: code }
  }
}

const backoff = (attempt: number) => new Promise((r) => setTimeout(r, 100 * 2 ** attempt * (0.8 + Math.random() * 0.4)))

type Stock = { readonly _tag: "Stock"; readonly available: number } | { readonly _tag: "NotFound" } | { readonly _tag: "Failed"; readonly reason: string }

/** Copies available; reads are retried on 5xx, refused and timed-out calls. */
const getStock = async (bookId: string, correlationId: string): Promise<Stock> => {
  for (let attempt = 0; ; attempt++) {
    const result = await call("GET", `/api/v1/inventory/${encodeURIComponent(bookId)}`, correlationId)
    if (result._tag === "Answered") {
      if (result.status === 404) return { _tag: "NotFound" }
      if (result.status < 400) {
        const available = readAvailable(result.body)
        return available === undefined ? { _tag: "Failed", reason: "unexpected response body" } : { _tag: "Stock", available }
      }
      if (result.status < 500) return { _tag: "Failed", reason: `inventory rejected the request (${result.status})` }
    }
    if (attempt >= RETRY_ATTEMPTS) return { _tag: "Failed", reason: result._tag === "Answered" ? `status ${result.status}` : result.reason }
    await backoff(attempt)
  }
}

const readAvailable = (body: unknown): number | undefined => {
  if (typeof body !== "object" || body === null || !("inventory" in body)) return undefined
  const inventory = body.inventory
  if (typeof inventory !== "object" || inventory === null || !("quantity_available" in inventory)) return undefined
  const available = inventory.quantity_available
  return typeof available === "number" && Number.isInteger(available) ? available : undefined
}

const isTransaction = (body: unknown): boolean =>
  typeof body === "object" && body !== null && "id" in body && typeof body.id === "string" &&
  "quantity_change" in body && typeof body.quantity_change === "number" && "timestamp" in body && typeof body.timestamp === "string"

type Adjusted =
  | { readonly _tag: "Applied" }
  | { readonly _tag: "Insufficient" }
  | { readonly _tag: "NotFound" }
  | { readonly _tag: "NotApplied"; readonly reason: string }
  | { readonly _tag: "Unknown"; readonly reason: string }

/** One adjust; re-sent only while the connection is refused (it certainly never arrived). */
const adjust = async (bookId: string, change: number, note: string, correlationId: string): Promise<Adjusted> => {
  const body = JSON.stringify({ quantity_change: change, notes: note })
  for (let attempt = 0; ; attempt++) {
    const result = await call("POST", `/api/v1/inventory/adjust?book_id=${encodeURIComponent(bookId)}`, correlationId, body)
    if (result._tag === "Answered") {
      if (result.status < 400) return isTransaction(result.body) ? { _tag: "Applied" } : { _tag: "Unknown", reason: "unexpected adjust response body" }
      if (result.status === 400) return { _tag: "Insufficient" }
      if (result.status === 404) return { _tag: "NotFound" }
      if (result.status < 500) return { _tag: "NotApplied", reason: `inventory rejected the request (${result.status})` }
      return { _tag: "Unknown", reason: `status ${result.status}` }
    }
    if (result._tag === "Unknown") return { _tag: "Unknown", reason: result.reason }
    if (attempt >= RETRY_ATTEMPTS) return { _tag: "NotApplied", reason: `not applied: ${result.reason}` }
    await backoff(attempt)
  }
}

// ---------------------------------------------------------------------------------------------
// The saga
// ---------------------------------------------------------------------------------------------

interface Item {
  readonly bookId: string
  readonly qty: number
  readonly unitPriceCents: number
  readonly lineTotalCents: number
}
interface Order {
  readonly orderId: string
  readonly totalCents: number
  readonly items: ReadonlyArray<Item>
  readonly createdAt: string
}
interface Reply {
  readonly status: number
  readonly body: unknown
  readonly headers?: Record<string, string>
}
interface Scope {
  readonly userId: string
  readonly key: string
  readonly fingerprint: string
}

const errorReply = (status: number, error: string, message: string, correlationId: string, details?: unknown, headers?: Record<string, string>): Reply => ({
  status,
  body: details === undefined ? { error, message, correlationId } : { error, message, details, correlationId },
  ...(headers === undefined ? {} : { headers })
})

const orderJson = (order: Order) => ({
  orderId: order.orderId,
  status: "CONFIRMED",
  total: centsToNumber(order.totalCents),
  currency: "USD",
  items: order.items.map((i) => ({
    bookId: i.bookId,
    qty: i.qty,
    unitPrice: centsToNumber(i.unitPriceCents),
    lineTotal: centsToNumber(i.lineTotalCents)
  })),
  createdAt: order.createdAt
})
type OrderJson = ReturnType<typeof orderJson>

type Claim = { readonly _tag: "Claimed" } | { readonly _tag: "Answer"; readonly reply: Reply }

/** Claims the key (one unique insert), or answers what it remembers. */
const claim = (scope: Scope, correlationId: string): Claim => {
  for (let i = 0; i < 3; i++) {
    const now = Date.now()
    const at = new Date(now).toISOString()
    if (stmt.claimKey.all(scope.userId, scope.key, scope.fingerprint, at, at, new Date(now + TTL_MS).toISOString()).length === 1) {
      return { _tag: "Claimed" }
    }
    const row: unknown = stmt.findKey.get(scope.userId, scope.key)
    if (!isKeyRow(row)) continue // released meanwhile
    if (row.state === "completed" && row.expires_at <= at) {
      stmt.deleteExpiredKey.run(scope.userId, scope.key, row.expires_at)
      continue
    }
    if (row.fingerprint !== scope.fingerprint) {
      return { _tag: "Answer", reply: errorReply(409, "idempotency_conflict", "This Idempotency-Key was already used with a different request", correlationId) }
    }
    if (row.state === "completed") {
      const stored: unknown = JSON.parse(row.response_body ?? "null")
      if (typeof stored === "object" && stored !== null && "outcome" in stored) {
        if (stored.outcome === "confirmed" && "order" in stored) {
          return { _tag: "Answer", reply: { status: 200, body: stored.order, headers: { "idempotent-replayed": "true" } } }
        }
        if (stored.outcome === "payment_failed" && "orderId" in stored && "reason" in stored) {
          return {
            _tag: "Answer",
            reply: errorReply(400, "payment_failed", `Payment was declined: ${String(stored.reason)}`, correlationId, { orderId: stored.orderId }, { "idempotent-replayed": "true" })
          }
        }
      }
      throw new Error("stored idempotent response is unreadable")
    }
    const staleBefore = new Date(now - STALE_CLAIM_MS).toISOString()
    if (row.order_id === null && row.locked_at !== null && row.locked_at < staleBefore) {
      if (stmt.takeOverKey.all(at, scope.userId, scope.key, row.locked_at).length === 1) return { _tag: "Claimed" }
    }
    break
  }
  return {
    _tag: "Answer",
    reply: errorReply(409, "idempotency_in_progress", "A request with this Idempotency-Key is still being processed", correlationId, undefined, { "retry-after": "1" })
  }
}

type LineState = "pending" | "taken" | "unknown" | "returned" | "return_failed"

/** The saga proper, once the key (if any) is ours. */
const run = async (request: OrderRequest, scope: Scope | undefined, correlationId: string): Promise<Reply> => {
  const release = () => {
    if (scope !== undefined) stmt.releaseKey.run(scope.userId, scope.key, scope.fingerprint)
  }
  const items: Array<Item> = request.lines.map((l) => ({ ...l, lineTotalCents: l.unitPriceCents * l.qty }))
  let totalCents = 0
  for (const item of items) totalCents += item.lineTotalCents

  // Pre-check every line concurrently.
  const stocks = await Promise.all(items.map((item) => getStock(item.bookId, correlationId)))
  const unknown: Array<string> = []
  const short: Array<{ bookId: string; available: number; requested: number }> = []
  for (const [i, stock] of stocks.entries()) {
    const item = items[i]
    if (item === undefined) continue
    if (stock._tag === "Failed") {
      release()
      return errorReply(502, "upstream_unavailable", `The inventory service failed: ${stock.reason}`, correlationId)
    }
    if (stock._tag === "NotFound") unknown.push(item.bookId)
    else if (stock.available < item.qty) short.push({ bookId: item.bookId, available: stock.available, requested: item.qty })
  }
  if (unknown.length > 0) {
    release()
    return errorReply(422, "unknown_book", `The inventory has no record of: ${unknown.join(", ")}`, correlationId, { bookIds: unknown })
  }
  if (short.length > 0) {
    release()
    return errorReply(409, "insufficient_stock", "Not enough stock on hand for some lines", correlationId, short)
  }

  // The order, PENDING, and the key learns which order it made (one transaction).
  const order: Order = { orderId: randomUUID(), totalCents, items, createdAt: new Date().toISOString() }
  insertPending(order, request.userId, scope, order.createdAt)

  // the heartbeat (one timer for all sagas) keeps the lease of every order in flight
  leasedOrders.add(order.orderId)
  try {
    return await takeChargeConfirm(request, scope, correlationId, order, items, release)
  } finally {
    leasedOrders.delete(order.orderId)
  }
}

/** Journals lines 0..`lines`-1 of `orderId` as taken, in one transaction. */
const journalTaken = db.transaction((orderId: string, lines: number) => {
  const at = new Date().toISOString()
  for (let lineNo = 0; lineNo < lines; lineNo++) stmt.setLineState.run("taken", at, orderId, lineNo)
})

/** Steps 6 to 9: take stock per line, journal, pay, confirm with the outbox row, store the response. */
const takeChargeConfirm = async (
  request: OrderRequest,
  scope: Scope | undefined,
  correlationId: string,
  order: Order,
  items: ReadonlyArray<Item>,
  release: () => void
): Promise<Reply> => {
  const states: Array<LineState> = items.map(() => "pending")
  const journal = (lineNo: number, state: LineState) => {
    states[lineNo] = state
    stmt.setLineState.run(state, new Date().toISOString(), order.orderId, lineNo)
  }

  // Take stock line by line. A line stays `pending` until its take has answered; the `taken`
  // marks are written together (one transaction) once the takes are done, as the product does.
  let failure: Reply | undefined
  for (const [lineNo, item] of items.entries()) {
    const taken = await adjust(item.bookId, -item.qty, `order:${order.orderId}:${lineNo}`, correlationId)
    if (taken._tag === "Applied") {
      states[lineNo] = "taken"
      continue
    }
    if (taken._tag === "Insufficient") {
      const stock = await getStock(item.bookId, correlationId)
      const available = stock._tag === "Stock" ? stock.available : 0
      failure = errorReply(409, "insufficient_stock", "Not enough stock on hand for some lines", correlationId, [
        { bookId: item.bookId, available, requested: item.qty }
      ])
    } else if (taken._tag === "NotFound") {
      failure = errorReply(422, "unknown_book", `The inventory has no record of: ${item.bookId}`, correlationId, { bookIds: [item.bookId] })
    } else {
      if (taken._tag === "Unknown") journal(lineNo, "unknown")
      failure = errorReply(502, "upstream_unavailable", `The inventory service failed: ${taken.reason}`, correlationId)
    }
    break
  }

  // Payment, journaled before anything else happens.
  let declined = false
  if (failure === undefined) {
    journalTaken(order.orderId, states.length)
    if (PAYMENT_SUCCESS_RATIO >= 1 || Math.random() < PAYMENT_SUCCESS_RATIO) {
      stmt.setPayment.run("succeeded", `sim_${order.orderId}`, new Date().toISOString(), order.orderId)
    } else {
      declined = true
      stmt.setPayment.run("declined", null, new Date().toISOString(), order.orderId)
      failure = errorReply(400, "payment_failed", "Payment was declined: card declined (simulated)", correlationId, { orderId: order.orderId })
    }
  }

  if (failure !== undefined) {
    // Give back what was taken, in reverse order.
    for (let lineNo = items.length - 1; lineNo >= 0; lineNo--) {
      const item = items[lineNo]
      if (item === undefined || states[lineNo] !== "taken") continue
      const back = await adjust(item.bookId, item.qty, `compensate:${order.orderId}:${lineNo}`, correlationId)
      if (back._tag === "Applied") journal(lineNo, "returned")
      else {
        journal(lineNo, "return_failed")
        log("ERROR", "compensation failed; left for recovery", { correlationId, orderId: order.orderId, bookId: item.bookId, lineNo, error: back._tag })
      }
    }
    if (states.some((s) => s === "unknown" || s === "return_failed")) {
      log("ERROR", "saga failed with stock possibly held; order left PENDING", { correlationId, orderId: order.orderId, lineStates: states })
      return failure
    }
    const at = new Date().toISOString()
    if (declined) {
      stmt.finish.all("PAYMENT_FAILED", "card declined (simulated)", at, order.orderId)
      if (scope !== undefined) {
        const stored = JSON.stringify({ outcome: "payment_failed", orderId: order.orderId, reason: "card declined (simulated)" })
        stmt.completeKey.run(400, stored, new Date(Date.now() + TTL_MS).toISOString(), scope.userId, scope.key, scope.fingerprint)
      }
    } else {
      stmt.finish.all("CANCELLED", "stock not taken", at, order.orderId)
      release()
    }
    return failure
  }

  // Confirmed + outbox row + the key's stored response in one transaction; once paid, a failed
  // confirm is retried, never compensated.
  const confirmedAt = new Date().toISOString()
  const body = orderJson(order)
  for (let attempt = 0; ; attempt++) {
    try {
      confirm(order, request.userId, confirmedAt, scope, body)
      break
    } catch (error) {
      if (attempt >= 5) throw error
      await new Promise((r) => setTimeout(r, 50 * 2 ** attempt))
    }
  }
  log("INFO", "order confirmed", { correlationId, orderId: order.orderId })
  return { status: 201, body }
}

const placeOrder = async (request: OrderRequest, correlationId: string): Promise<Reply> => {
  const started = performance.now()
  const reply = await claimAndRun(request, correlationId)
  const outcome = reply.status === 201 ? "confirmed" : reply.status === 200 ? "replay" : String(reply.status)
  count(`orders{outcome=${outcome}}`)
  observe(`saga_duration{outcome=${outcome}}`, (performance.now() - started) / 1000)
  return reply
}

const claimAndRun = async (request: OrderRequest, correlationId: string): Promise<Reply> => {
  if (request.idempotencyKey === undefined) return run(request, undefined, correlationId)
  const scope: Scope = { userId: request.userId, key: request.idempotencyKey, fingerprint: fingerprint(request) }
  const claimed = claim(scope, correlationId)
  return claimed._tag === "Claimed" ? run(request, scope, correlationId) : claimed.reply
}

const getOrder = (orderId: string, correlationId: string): Reply => {
  const row: unknown = UUID.test(orderId) ? stmt.findOrder.get(orderId) : undefined
  if (typeof row !== "object" || row === null || !("id" in row) || !("status" in row) || !("total_cents" in row) || !("created_at" in row)) {
    return errorReply(404, "order_not_found", `No order has the id ${JSON.stringify(orderId)}`, correlationId)
  }
  const items = stmt.findItems.all(orderId).flatMap((i: unknown) =>
    typeof i === "object" && i !== null && "book_id" in i && "qty" in i && "unit_price_cents" in i && "line_total_cents" in i
      ? [{ bookId: i.book_id, qty: i.qty, unitPrice: centsToNumber(Number(i.unit_price_cents)), lineTotal: centsToNumber(Number(i.line_total_cents)) }]
      : []
  )
  return {
    status: 200,
    body: { orderId: row.id, status: row.status, total: centsToNumber(Number(row.total_cents)), currency: "USD", items, createdAt: row.created_at }
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

const ACCEPTED_ID = /^[A-Za-z0-9._:\-]{1,128}$/
const inFlight = new Set<Promise<unknown>>()

const readBody = (req: IncomingMessage): Promise<string | undefined> =>
  new Promise((resolve) => {
    const chunks: Array<Buffer> = []
    let size = 0
    req.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size <= MAX_BODY_BYTES) chunks.push(chunk)
    })
    req.on("end", () => resolve(size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks).toString("utf8")))
    req.on("error", () => resolve(undefined))
  })

const handle = async (req: IncomingMessage, correlationId: string): Promise<Reply> => {
  const path = (req.url ?? "/").split("?")[0] ?? "/"
  if (req.method === "GET" && path === "/health") return { status: 200, body: { status: "healthy", version: "baseline", timestamp: new Date().toISOString() } }
  if (req.method === "GET" && path.startsWith("/orders/")) return getOrder(decodeURIComponent(path.slice("/orders/".length)), correlationId)
  if (req.method !== "POST" || path !== "/orders") return errorReply(404, "not_found", `No route for ${req.method ?? "?"} ${req.url ?? ""}`, correlationId)

  const contentType = req.headers["content-type"]?.split(";")[0]?.trim().toLowerCase() ?? ""
  if (contentType !== "application/json" && !/^application\/[a-z0-9.+-]*\+json$/.test(contentType)) {
    return errorReply(400, "validation_error", "The body must be JSON", correlationId, [{ field: "Content-Type", message: "must be application/json" }])
  }
  const text = await readBody(req)
  if (text === undefined) return errorReply(400, "validation_error", "The body is too large", correlationId, [{ field: "body", message: `must be at most ${MAX_BODY_BYTES} bytes` }])
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return errorReply(400, "validation_error", "The body is not valid JSON", correlationId, [{ field: "body", message: "must be valid JSON" }])
  }
  const header = req.headers["idempotency-key"]
  const decoded = decodeOrder(json, Array.isArray(header) ? header[0] : header)
  if (decoded._tag === "Invalid") return errorReply(400, "validation_error", "The order request is invalid", correlationId, decoded.issues)
  // The saga runs detached from the connection: a client that hangs up does not stop it.
  const saga = placeOrder(decoded.request, correlationId)
  inFlight.add(saga)
  void saga.finally(() => inFlight.delete(saga))
  return saga
}

const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  const started = performance.now()
  const incoming = req.headers["x-request-id"]
  const correlationId = typeof incoming === "string" && ACCEPTED_ID.test(incoming) ? incoming : randomUUID()
  handle(req, correlationId)
    .catch((error: unknown) => {
      log("ERROR", "request failed with a defect", { correlationId, error: String(error) })
      return errorReply(500, "internal_error", "An internal error occurred", correlationId)
    })
    .then((reply) => {
      const payload = JSON.stringify(reply.body)
      res.writeHead(reply.status, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(payload),
        "x-request-id": correlationId,
        ...reply.headers
      })
      res.end(payload)
      const route = (req.url ?? "/").startsWith("/orders/") ? "/orders/:orderId" : (req.url ?? "/").split("?")[0]
      observe(`http_request_duration{method=${req.method ?? "?"},route=${route},status=${reply.status}}`, (performance.now() - started) / 1000)
      log("INFO", "request", {
        correlationId,
        method: req.method,
        path: (req.url ?? "/").split("?")[0],
        status: reply.status,
        durationMs: Math.round((performance.now() - started) * 10) / 10
      })
    })
})

server.listen(PORT, HOST, () => log("INFO", "baseline listening", { port: PORT, host: HOST }))

const shutdown = () => {
  server.close()
  server.closeIdleConnections()
  const grace = setTimeout(() => process.exit(0), 10_000)
  void Promise.allSettled([...inFlight]).then(async () => {
    clearTimeout(grace)
    await pool.close()
    db.close()
    process.exit(0)
  })
}
process.on("SIGTERM", shutdown)
process.on("SIGINT", shutdown)
