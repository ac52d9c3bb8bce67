import { NodeSdk } from "@effect/opentelemetry"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http"
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { type MetricReader, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Config, Context, Effect, Layer, Option } from "effect"
import { sampleProcessMetrics } from "../services/Metrics.js"

/** The Prometheus text exposition of every metric, for `GET /metrics`. */
export class PrometheusMetrics extends Context.Tag("bookverse/PrometheusMetrics")<
  PrometheusMetrics,
  { readonly render: Effect.Effect<string> }
>() {}

/** Where telemetry goes: `OTEL_EXPORTER_OTLP_ENDPOINT` (unset: no export) and `OTEL_SERVICE_NAME`. */
export const TelemetryConfig = Config.all({
  otlpEndpoint: Config.option(Config.url("OTEL_EXPORTER_OTLP_ENDPOINT")),
  serviceName: Config.string("OTEL_SERVICE_NAME").pipe(Config.withDefault("bookverse-checkout"))
})

/**
 * Metrics and traces through `@effect/opentelemetry`: Effect's metrics are read by the
 * OpenTelemetry Prometheus exporter (served by the app at `/metrics`, no server of its own) and,
 * when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, pushed over OTLP/HTTP every 10 s together with every
 * span (batched), and the W3C `traceparent` goes to the inventory. Without an endpoint tracing is
 * off: no spans are made (they would be work nobody reads) and logs carry no trace ids.
 * Also samples the process metrics. `serviceVersion` goes on the resource.
 */
export const TelemetryLive = (serviceVersion: string) =>
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const { otlpEndpoint, serviceName } = yield* TelemetryConfig
      const prometheus = new PrometheusExporter({ preventServerStart: true })
      const serializer = new PrometheusSerializer()
      const readers: Array<MetricReader> = [prometheus]
      // the OTLP exporters read OTEL_EXPORTER_OTLP_ENDPOINT (and its siblings) themselves
      if (Option.isSome(otlpEndpoint)) {
        readers.push(new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter(), exportIntervalMillis: 10_000 }))
      }
      const sdk = NodeSdk.layer(() => ({
        resource: { serviceName, serviceVersion },
        metricReader: readers,
        ...(Option.isSome(otlpEndpoint) ? { spanProcessor: new BatchSpanProcessor(new OTLPTraceExporter()) } : {})
      }))
      const render = Layer.succeed(PrometheusMetrics, {
        render: Effect.promise(() => prometheus.collect()).pipe(Effect.map(({ resourceMetrics }) => serializer.serialize(resourceMetrics)))
      })
      // Without an exporter nobody reads a span: tracing is off (no span objects, no traceparent),
      // and HTTP servers skip their per-request span work too (URL parse, header redaction).
      const tracing = Option.isSome(otlpEndpoint)
        ? Layer.empty
        : Layer.merge(
            Layer.setTracerEnabled(false),
            Layer.locallyScoped(HttpMiddleware.currentTracerDisabledWhen, () => true)
          )
      return Layer.mergeAll(sdk, render, tracing, Layer.scopedDiscard(sampleProcessMetrics()))
    })
  )
