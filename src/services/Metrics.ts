import { Duration, Effect, Metric, MetricBoundaries, MetricKey, MetricLabel, Schedule } from "effect"
import { monitorEventLoopDelay } from "node:perf_hooks"

/**
 * The service's metrics, as Effect `Metric`s. They are exported in Prometheus text format at
 * `GET /metrics` (and over OTLP when configured) by `src/layers/Telemetry.ts`. Names carry their
 * unit and `_total` for counters, per Prometheus conventions.
 */

/** Latency buckets in seconds: 1 ms to ~16 s. */
const seconds = MetricBoundaries.exponential({ start: 0.001, factor: 2, count: 15 })

/** How an order request ended, as the `outcome` label of the order metrics. */
export type OrderOutcome =
  | "confirmed"
  | "payment_failed"
  | "insufficient_stock"
  | "unknown_book"
  | "validation_error"
  | "upstream_unavailable"
  | "upstream_timeout"
  | "conflict"
  | "replay"
  | "in_progress"
  | "service_unavailable"
  | "overloaded"
  | "internal_error"

/** `checkout_orders_total{outcome}`: order requests by how they ended. */
const ordersTotalKey = MetricKey.counter("checkout_orders_total", {
  description: "POST /orders requests by outcome",
  incremental: true
})
export const ordersTotal = Metric.fromMetricKey(ordersTotalKey)

/** `checkout_saga_duration_seconds{outcome}`: time to answer an order request. */
const sagaDurationKey = MetricKey.histogram(
  "checkout_saga_duration_seconds",
  seconds,
  "Time from a decoded order request to its answer, in seconds, by outcome"
)
export const sagaDuration = Metric.fromMetricKey(sagaDurationKey)

/** `checkout_inventory_requests_total{operation,status}`: every attempt, retries included. */
const inventoryRequestsKey = MetricKey.counter("checkout_inventory_requests_total", {
  description: "Requests to the inventory service by operation and HTTP status (or timeout, refused, reset), retries included",
  incremental: true
})
export const inventoryRequests = Metric.fromMetricKey(inventoryRequestsKey)

/** `checkout_inventory_request_duration_seconds{operation}` */
const inventoryRequestDurationKey = MetricKey.histogram(
  "checkout_inventory_request_duration_seconds",
  seconds,
  "Duration of one request to the inventory service, in seconds"
)
export const inventoryRequestDuration = Metric.fromMetricKey(inventoryRequestDurationKey)

/** `checkout_compensations_total{result}`: give-backs of taken stock (`returned` or `failed`). */
const compensationsTotalKey = MetricKey.counter("checkout_compensations_total", {
  description: "Stock give-backs by result",
  incremental: true
})
export const compensationsTotal = Metric.fromMetricKey(compensationsTotalKey)

/** `checkout_idempotency_replays_total`: requests answered from an idempotency key's stored response. */
export const idempotencyReplays = Metric.counter("checkout_idempotency_replays_total", {
  description: "Requests answered with a stored response",
  incremental: true
})

/** `http_server_request_duration_seconds{method,route,status}`: `route` is the template, never the raw path. */
const httpRequestDurationKey = MetricKey.histogram(
  "http_server_request_duration_seconds",
  seconds,
  "HTTP requests served, by method, route template and status, in seconds"
)
export const httpRequestDuration = Metric.fromMetricKey(httpRequestDurationKey)

/**
 * A metric per combination of label values (`names` = values), made by `make` on first use; `make`
 * builds it on a key that carries the labels itself. (A metric made with `Metric.tagged` merges
 * its labels into a new array at every update, which misses Effect's hook cache, keyed by that
 * array: every update built and hashed a new metric key, ~3% of the api's CPU under load.)
 */
const taggedOnce = <M>(make: (labels: ReadonlyArray<MetricLabel.MetricLabel>) => M, ...names: ReadonlyArray<string>) => {
  const made = new Map<string, M>()
  return (...values: ReadonlyArray<string>): M => {
    const id = values.join("\u0000")
    const found = made.get(id)
    if (found !== undefined) return found
    const tagged = make(names.map((name, i) => MetricLabel.make(name, values[i] ?? "")))
    made.set(id, tagged)
    return tagged
  }
}

/** A counter per label set. */
const counterBy = (key: MetricKey.MetricKey.Counter<number>, ...names: ReadonlyArray<string>) =>
  taggedOnce((labels) => Metric.fromMetricKey(MetricKey.taggedWithLabels(key, labels)), ...names)
/** A histogram per label set. */
const histogramBy = (key: MetricKey.MetricKey.Histogram, ...names: ReadonlyArray<string>) =>
  taggedOnce((labels) => Metric.fromMetricKey(MetricKey.taggedWithLabels(key, labels)), ...names)

const ordersBy = counterBy(ordersTotalKey, "outcome")
const sagaDurationBy = histogramBy(sagaDurationKey, "outcome")
const inventoryRequestsBy = counterBy(inventoryRequestsKey, "operation", "status")
const inventoryRequestDurationBy = histogramBy(inventoryRequestDurationKey, "operation")
const httpRequestDurationBy = histogramBy(httpRequestDurationKey, "method", "route", "status")
const compensationsBy = counterBy(compensationsTotalKey, "result")

/** No extra labels: a labelled metric here carries its labels in its key. */
const NO_EXTRA_LABELS: ReadonlyArray<MetricLabel.MetricLabel> = []

/**
 * Updates labelled metrics in one synchronous step: what `Metric.update` does, without its three
 * effects per update (the api records ~7 updates an order). The fiber's metric labels
 * (`Effect.labelMetrics`) are not added: nothing here sets any, and every metric of this module
 * carries its labels in its key.
 */
const recordAll = (f: () => void): Effect.Effect<void> => Effect.sync(f)

/** Counts one give-back of taken stock: `returned`, or `failed` (left for recovery). */
export const recordCompensation = (result: "returned" | "failed") =>
  recordAll(() => compensationsBy(result).unsafeUpdate(1, NO_EXTRA_LABELS))

/** Records one order request's outcome and duration (seconds) now, outside any effect (for a continuation already on the fiber). */
export const recordOrderNow = (outcome: OrderOutcome, durationSeconds: number): void => {
  ordersBy(outcome).unsafeUpdate(1, NO_EXTRA_LABELS)
  sagaDurationBy(outcome).unsafeUpdate(durationSeconds, NO_EXTRA_LABELS)
}

/** Records one order request's outcome and duration (seconds). */
export const recordOrder = (outcome: OrderOutcome, durationSeconds: number) =>
  recordAll(() => recordOrderNow(outcome, durationSeconds))

/** Records one HTTP request served: `method`, `route` (a route template, never a raw path), `status`, its duration in seconds. */
export const recordHttpRequestNow = (method: string, route: string, status: number, durationSeconds: number): void =>
  httpRequestDurationBy(method, route, String(status)).unsafeUpdate(durationSeconds, NO_EXTRA_LABELS)

/**
 * Records one inventory request attempt now, outside any effect (for a continuation that already
 * runs on the fiber): `operation` (get_stock, adjust, transactions), `status` (HTTP status or
 * timeout/refused/reset/busy/expired), its duration in seconds.
 */
export const recordInventoryRequestNow = (operation: string, status: string, durationSeconds: number): void => {
  inventoryRequestsBy(operation, status).unsafeUpdate(1, NO_EXTRA_LABELS)
  inventoryRequestDurationBy(operation).unsafeUpdate(durationSeconds, NO_EXTRA_LABELS)
}

// ---------------------------------------------------------------------------------------------
// Process metrics
// ---------------------------------------------------------------------------------------------

/** `process_resident_memory_bytes` */
export const residentMemory = Metric.gauge("process_resident_memory_bytes", { description: "Resident set size in bytes" })
/** `process_heap_used_bytes` */
export const heapUsed = Metric.gauge("process_heap_used_bytes", { description: "V8 heap used in bytes" })
/** `process_cpu_seconds_total`: user and system CPU time, in seconds. */
export const cpuSeconds = Metric.counter("process_cpu_seconds_total", {
  description: "User and system CPU time spent, in seconds",
  incremental: true
})
/** `nodejs_eventloop_lag_seconds`: the 99th percentile of event-loop delay over the last interval. */
export const eventLoopLag = Metric.gauge("nodejs_eventloop_lag_seconds", {
  description: "Event-loop delay (p99 over the last sampling interval), in seconds"
})

/**
 * Samples the process metrics (RSS, heap, CPU, event-loop lag) every `intervalMs` for as long as
 * the enclosing scope is open.
 */
export const sampleProcessMetrics = (intervalMs = 5_000) =>
  Effect.gen(function* () {
    const histogram = monitorEventLoopDelay({ resolution: 20 })
    histogram.enable()
    yield* Effect.addFinalizer(() => Effect.sync(() => histogram.disable()))
    let lastCpu = process.cpuUsage()
    const sample = Effect.suspend(() => {
      const memory = process.memoryUsage()
      const cpu = process.cpuUsage()
      const cpuDelta = (cpu.user - lastCpu.user + (cpu.system - lastCpu.system)) / 1e6
      lastCpu = cpu
      const lag = histogram.percentile(99) / 1e9
      histogram.reset()
      return Effect.all([
        Metric.set(residentMemory, memory.rss),
        Metric.set(heapUsed, memory.heapUsed),
        Metric.incrementBy(cpuSeconds, cpuDelta),
        Metric.set(eventLoopLag, Number.isFinite(lag) ? lag : 0)
      ])
    })
    yield* sample
    yield* Effect.forkScoped(Effect.repeat(sample, Schedule.spaced(Duration.millis(intervalMs))))
  })
