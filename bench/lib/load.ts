/**
 * Load generation with autocannon's programmatic API, and the request shapes the scenarios send.
 */
import autocannon from "autocannon"
import { randomUUID } from "node:crypto"

/** One request as a scenario sends it. */
export interface RequestShape {
  readonly method: "GET" | "POST"
  readonly path: string
  readonly headers: Record<string, string>
  readonly body?: string
}

/** How to drive a target: connections, for how long (or how many requests), and what to send. */
export interface LoadSpec {
  readonly url: string
  readonly connections: number
  /** Seconds; ignored when `amount` is set. */
  readonly durationSeconds: number
  /** Total requests to send, instead of a duration. */
  readonly amount?: number
  /** Called for every request: a fresh idempotency key per order is made here. */
  readonly next: () => RequestShape
  /** Per-request timeout in seconds (default 10). */
  readonly timeoutSeconds?: number
}

/** Latency figures in milliseconds, from every 2xx response's own timing (sub-millisecond). */
export interface Latency {
  readonly p50: number
  readonly p99: number
  readonly max: number
  readonly mean: number
}

/** What one load run measured. */
export interface LoadResult {
  /** Responses received, any status. */
  readonly responses: number
  readonly ok: number
  readonly non2xx: number
  /** Connection errors and timeouts. */
  readonly errors: number
  readonly timeouts: number
  readonly durationSeconds: number
  /** 2xx responses per second. */
  readonly okPerSecond: number
  readonly latency: Latency
  /** Responses by status code. */
  readonly statusCodes: Record<string, number>
}

/** The `q` quantile (0..1) of sorted values, nearest rank; 0 for none. */
export const quantile = (sorted: ArrayLike<number>, q: number): number => {
  if (sorted.length === 0) return 0
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank] ?? 0
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits

/**
 * Runs autocannon against `spec.url` and resolves with its counts and the latency percentiles of
 * the 2xx responses (taken from each response's own timing rather than autocannon's
 * whole-millisecond histogram, so 1-connection figures are not rounded to 1 ms).
 */
export const runLoad = (spec: LoadSpec): Promise<LoadResult> =>
  new Promise((resolve, reject) => {
    const latencies: Array<number> = []
    const statusCodes: Record<string, number> = {}
    const first = spec.next()
    const instance = autocannon(
      {
        url: spec.url,
        connections: spec.connections,
        pipelining: 1,
        timeout: spec.timeoutSeconds ?? 10,
        ...(spec.amount === undefined ? { duration: spec.durationSeconds } : { amount: spec.amount }),
        requests: [
          {
            method: first.method,
            path: first.path,
            setupRequest: (request) => {
              const shape = spec.next()
              return { ...request, method: shape.method, path: shape.path, headers: shape.headers, body: shape.body }
            }
          }
        ]
      },
      (error: unknown, result: autocannon.Result) => {
        if (error !== null && error !== undefined) {
          reject(error instanceof Error ? error : new Error(String(error)))
          return
        }
        latencies.sort((a, b) => a - b)
        let sum = 0
        for (const l of latencies) sum += l
        const ok = result["2xx"]
        const durationSeconds = result.duration > 0 ? result.duration : spec.durationSeconds
        resolve({
          responses: Object.values(statusCodes).reduce((a, b) => a + b, 0),
          ok,
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
          durationSeconds,
          okPerSecond: round(ok / durationSeconds, 1),
          latency: {
            p50: round(quantile(latencies, 0.5)),
            p99: round(quantile(latencies, 0.99)),
            max: round(latencies[latencies.length - 1] ?? 0),
            mean: round(latencies.length === 0 ? 0 : sum / latencies.length)
          },
          statusCodes
        })
      }
    )
    instance.on("response", (_client, statusCode, _bytes, responseTime) => {
      statusCodes[String(statusCode)] = (statusCodes[String(statusCode)] ?? 0) + 1
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime)
    })
  })

// ---------------------------------------------------------------------------------------------
// Request shapes
// ---------------------------------------------------------------------------------------------

/** `n` distinct books out of `bookIds`, starting at a random one. */
const pickBooks = (bookIds: ReadonlyArray<string>, n: number): Array<string> => {
  const start = Math.floor(Math.random() * bookIds.length)
  return Array.from({ length: n }, (_, i) => bookIds[(start + i * 7) % bookIds.length] ?? "")
}

/** The JSON body of an order of `lines` lines (1 copy each) for one of 100 bench users. */
export const orderBody = (bookIds: ReadonlyArray<string>, lines: number): string =>
  JSON.stringify({
    userId: `bench-user-${Math.floor(Math.random() * 100)}`,
    items: pickBooks(bookIds, lines).map((bookId, i) => ({ bookId, qty: 1, unitPrice: `${12 + i}.99` }))
  })

/** A new order of `lines` lines with a fresh `Idempotency-Key` every time. */
export const newOrder = (bookIds: ReadonlyArray<string>, lines: number) => (): RequestShape => ({
  method: "POST",
  path: "/orders",
  headers: { "content-type": "application/json", "idempotency-key": randomUUID() },
  body: orderBody(bookIds, lines)
})

/** The same order, with the same key, every time: after the first, every answer is a replay. */
export const replayOf = (body: string, key: string) => (): RequestShape => ({
  method: "POST",
  path: "/orders",
  headers: { "content-type": "application/json", "idempotency-key": key },
  body
})

/** `GET /orders/{id}` cycling through `orderIds`. */
export const readOrders = (orderIds: ReadonlyArray<string>) => {
  let i = 0
  return (): RequestShape => ({ method: "GET", path: `/orders/${orderIds[i++ % orderIds.length] ?? ""}`, headers: {} })
}

/** Places `count` orders one by one over `fetch` and returns their ids (for the read scenario). */
export const placeOrders = async (url: string, bookIds: ReadonlyArray<string>, count: number): Promise<Array<string>> => {
  const ids: Array<string> = []
  for (let i = 0; i < count; i++) {
    const shape = newOrder(bookIds, 1 + (i % 5))()
    const res = await fetch(`${url}${shape.path}`, { method: "POST", headers: shape.headers, body: shape.body ?? null })
    const body: unknown = await res.json()
    if (res.status !== 201 || typeof body !== "object" || body === null || !("orderId" in body) || typeof body.orderId !== "string") {
      throw new Error(`placing an order failed: ${res.status} ${JSON.stringify(body)}`)
    }
    ids.push(body.orderId)
  }
  return ids
}
