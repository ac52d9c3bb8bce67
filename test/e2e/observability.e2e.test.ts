import parsePrometheusTextFormat, { type PrometheusFamily } from "parse-prometheus-text-format"
import { randomUUID } from "node:crypto"
import { createServer, type Server } from "node:http"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { runToExit } from "../support/process.js"
import { addFault, newBook, orderBody, request, type Running, startApi, startFakeInventory, tempDir } from "./harness.js"

const family = (families: ReadonlyArray<PrometheusFamily>, name: string) => {
  const found = families.find((f) => f.name === name)
  if (found === undefined) throw new Error(`no metric ${name}`)
  return found
}

/** The value of the sample of `name` whose labels include `labels` (0 when there is none). */
const sampleValue = (families: ReadonlyArray<PrometheusFamily>, name: string, labels: Record<string, string>) => {
  const sample = family(families, name).metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
  return Number(sample?.value ?? 0)
}

/**
 * The `_count` of histogram `name` for the label set including `labels`. The parser folds a
 * histogram's labelled series into one sample, so its `_count` lines are parsed on their own, as
 * an untyped family.
 */
const histogramCount = (text: string, name: string, labels: Record<string, string>) => {
  const series = text.split("\n").filter((line) => line.startsWith(`${name}_count{`) || line.startsWith(`${name}_count `))
  return sampleValue(parsePrometheusTextFormat(`${series.join("\n")}\n`), `${name}_count`, labels)
}

describe("operating it: metrics, traces, logs", () => {
  let inventory: Running
  let api: Running
  const dir = tempDir()
  const TOKEN = `svc-token-${randomUUID()}`
  const spans: Array<{ traceId: string; spanId: string; name: string; parentSpanId?: string }> = []
  let receiver: Server

  beforeAll(async () => {
    // an in-process OTLP/HTTP (JSON) receiver
    receiver = createServer((req, res) => {
      let body = ""
      req.on("data", (chunk: Buffer) => (body += chunk.toString()))
      req.on("end", () => {
        if (req.url === "/v1/traces") {
          const parsed: unknown = JSON.parse(body)
          collectSpans(parsed, spans)
        }
        res.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", () => r()))
    const address = receiver.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    inventory = await startFakeInventory({ FAKE_INVENTORY_REQUIRE_TOKEN: TOKEN })
    api = await startApi(inventory.url, dir.dir, {
      INVENTORY_AUTH_TOKEN: TOKEN,
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_BSP_SCHEDULE_DELAY: "100",
      RETRY_ATTEMPTS: "0",
      LOG_LEVEL: "DEBUG"
    })
  })
  afterAll(async () => {
    await api?.stop()
    await inventory?.stop()
    await new Promise((r) => receiver?.close(r))
    dir.remove()
  })

  it("counts every order outcome, the saga's duration, inventory requests and HTTP requests by route; parses as Prometheus text", async () => {
    const a = await newBook(inventory.url, 5)
    const key = randomUUID()
    expect((await request(`${api.url}/orders`, { body: orderBody([[a, 1, 2]]), headers: { "Idempotency-Key": key } })).status).toBe(201)
    expect((await request(`${api.url}/orders`, { body: orderBody([[a, 1, 2]]), headers: { "Idempotency-Key": key } })).status).toBe(200)
    expect((await request(`${api.url}/orders`, { body: orderBody([[a, 2, 2]]), headers: { "Idempotency-Key": key } })).status).toBe(409)
    expect((await request(`${api.url}/orders`, { body: orderBody([[a, 1, 2]]) })).status).toBe(201)
    expect((await request(`${api.url}/orders`, { body: orderBody([[a, 99, 2]]) })).status).toBe(409)
    expect((await request(`${api.url}/orders`, { body: orderBody([[randomUUID(), 1, 2]]) })).status).toBe(422)
    expect((await request(`${api.url}/orders`, { body: { userId: "" } })).status).toBe(400)
    expect((await request(`${api.url}/orders`, { raw: "nope" })).status).toBe(400)
    await addFault(inventory.url, { route: "getStock", bookId: a, fault: { kind: "status", status: 500 }, times: 1 })
    expect((await request(`${api.url}/orders`, { body: orderBody([[a, 1, 2]]) })).status).toBe(502)
    const orderId = randomUUID()
    expect((await request(`${api.url}/orders/${orderId}`)).status).toBe(404)

    const res = await fetch(`${api.url}/metrics`)
    expect(res.headers.get("content-type")).toContain("text/plain")
    const text = await res.text()
    const families = parsePrometheusTextFormat(text)
    const orders = (outcome: string) => sampleValue(families, "checkout_orders_total", { outcome })
    expect({
      confirmed: orders("confirmed"),
      replay: orders("replay"),
      conflict: orders("conflict"),
      insufficient_stock: orders("insufficient_stock"),
      unknown_book: orders("unknown_book"),
      validation_error: orders("validation_error"),
      upstream_unavailable: orders("upstream_unavailable")
    }).toEqual({
      confirmed: 2,
      replay: 1,
      conflict: 1,
      insufficient_stock: 1,
      unknown_book: 1,
      validation_error: 2,
      upstream_unavailable: 1
    })
    expect(family(families, "checkout_orders_total").type).toBe("COUNTER")
    expect(family(families, "checkout_saga_duration_seconds").type).toBe("HISTOGRAM")
    expect(histogramCount(text, "checkout_saga_duration_seconds", { outcome: "confirmed" })).toBe(2)
    expect(sampleValue(families, "checkout_idempotency_replays_total", {})).toBe(1)
    expect(sampleValue(families, "checkout_inventory_requests_total", { operation: "adjust", status: "200" })).toBe(2)
    expect(sampleValue(families, "checkout_inventory_requests_total", { operation: "get_stock", status: "500" })).toBe(1)
    expect(histogramCount(text, "checkout_inventory_request_duration_seconds", { operation: "adjust" })).toBe(2)
    expect(histogramCount(text, "http_server_request_duration_seconds", { route: "/orders", status: "201" })).toBe(2)
    expect(histogramCount(text, "http_server_request_duration_seconds", { route: "/orders/{orderId}", status: "404" })).toBe(1)
    // the raw path (an order id) never becomes a label
    expect(JSON.stringify(families)).not.toContain(orderId)
    expect(sampleValue(families, "process_resident_memory_bytes", {})).toBeGreaterThan(10_000_000)
    expect(family(families, "nodejs_eventloop_lag_seconds").type).toBe("GAUGE")
  })

  it("exports one trace per order whose spans include the inventory calls, with the trace id the inventory saw in traceparent", async () => {
    const a = await newBook(inventory.url, 5)
    await request(`${inventory.url}/__stats/reset`, { method: "POST" })
    const traceId = randomUUID().replace(/-/g, "")
    const parent = "00f067aa0ba902b7"
    const res = await request(`${api.url}/orders`, {
      body: orderBody([[a, 1, 2]]),
      headers: { traceparent: `00-${traceId}-${parent}-01` }
    })
    expect(res.status).toBe(201)
    const second = await request(`${api.url}/orders`, { body: orderBody([[a, 1, 2]]) })
    expect(second.status).toBe(201)

    const seen = ((await request(`${inventory.url}/__requests`)).body as { requests: Array<{ route: string; traceparent: string | null }> })
      .requests
    const seenTraceIds = seen.map((r) => r.traceparent?.split("-")[1])
    // the first order continues the client's trace; the second is a trace of its own
    expect(seen.filter((r) => r.traceparent?.split("-")[1] === traceId).map((r) => r.route)).toEqual(["getStock", "adjust"])
    const otherTraceIds = [...new Set(seenTraceIds.filter((t) => t !== traceId))]
    expect(otherTraceIds).toHaveLength(1)

    const deadline = Date.now() + 15_000
    const namesIn = (id: string) => spans.filter((s) => s.traceId === id).map((s) => s.name)
    while (Date.now() < deadline && !(namesIn(traceId).includes("InventoryClient.http.adjust") && namesIn(otherTraceIds[0] ?? "").includes("InventoryClient.http.adjust"))) {
      await new Promise((r) => setTimeout(r, 200))
    }
    for (const id of [traceId, otherTraceIds[0] ?? ""]) {
      expect(namesIn(id)).toEqual(
        expect.arrayContaining([
          "Checkout.saga",
          "Checkout.precheck",
          "InventoryClient.getStock",
          "InventoryClient.http.get_stock",
          "InventoryClient.adjust",
          "InventoryClient.http.adjust",
          "Checkout.takeStock",
          "PaymentGateway.charge",
          "OrderRepo.confirm"
        ])
      )
    }
    // the server span continues the client's span
    expect(spans.some((s) => s.traceId === traceId && s.parentSpanId === parent)).toBe(true)
  })

  it("never prints the inventory token: not in logs, metric labels or health bodies", async () => {
    const a = await newBook(inventory.url, 5)
    expect((await request(`${api.url}/orders`, { body: orderBody([[a, 1, 2]]) })).status).toBe(201) // the token works
    const bodies = [
      await (await fetch(`${api.url}/metrics`)).text(),
      await (await fetch(`${api.url}/health`)).text(),
      await (await fetch(`${api.url}/health/ready`)).text()
    ]
    for (const body of bodies) expect(body).not.toContain(TOKEN)
    expect(api.output().length).toBeGreaterThan(1000)
    expect(api.output()).not.toContain(TOKEN)
    // every log line is JSON with the trace beside the correlation id
    const lines = api.output().trim().split("\n").filter((l) => l.startsWith("{"))
    const request_ = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l["message"] === "request")
    expect(request_).toMatchObject({ correlationId: expect.any(String), traceId: expect.any(String), spanId: expect.any(String) })
  })
})

/** Pulls `{traceId, spanId, parentSpanId, name}` out of an OTLP/JSON trace export. */
function collectSpans(payload: unknown, into: Array<{ traceId: string; spanId: string; name: string; parentSpanId?: string }>) {
  if (typeof payload !== "object" || payload === null) return
  if ("traceId" in payload && "spanId" in payload && "name" in payload) {
    const { traceId, spanId, name } = payload
    const parentSpanId = "parentSpanId" in payload && typeof payload.parentSpanId === "string" ? payload.parentSpanId : undefined
    if (typeof traceId === "string" && typeof spanId === "string" && typeof name === "string") {
      into.push(parentSpanId === undefined ? { traceId, spanId, name } : { traceId, spanId, name, parentSpanId })
    }
    return
  }
  for (const value of Object.values(payload)) {
    if (Array.isArray(value)) for (const v of value) collectSpans(v, into)
    else collectSpans(value, into)
  }
}

describe("a process that cannot start", () => {
  it("the api with a bad setting exits 1 after one JSON line that says it stopped and names the variable", async () => {
    const ended = await runToExit("src/bin/api.ts", { PORT: "abc", LOG_LEVEL: "Info", DATABASE_URL: "sqlite:///:memory:" })
    expect(ended.code, ended.output).toBe(1)
    const errors = ended.output.split("\n").filter((l) => l.includes('"level":"ERROR"')).map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatchObject({ message: "the api stopped" })
    expect(String(errors[0]?.["cause"])).toContain("PORT")
  })
})
