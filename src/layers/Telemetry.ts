import * as OtelMetrics from "@effect/opentelemetry/Metrics"
import * as Resource from "@effect/opentelemetry/Resource"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus"
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
      const resource = { serviceName, serviceVersion }
      // The OTLP exporters and the tracing SDK are loaded only when there is somewhere to send to
      // (they read OTEL_EXPORTER_OTLP_ENDPOINT and its siblings themselves); without an endpoint
      // only the metrics reader for /metrics is set up.
      const sdk = Option.isSome(otlpEndpoint)
        ? Layer.unwrapEffect(
            Effect.promise(async () => {
              const [{ layer }, { OTLPMetricExporter }, { OTLPTraceExporter }, { PeriodicExportingMetricReader }, { BatchSpanProcessor }] =
                await Promise.all([
                  import("@effect/opentelemetry/NodeSdk"),
                  import("@opentelemetry/exporter-metrics-otlp-http"),
                  import("@opentelemetry/exporter-trace-otlp-http"),
                  import("@opentelemetry/sdk-metrics"),
                  import("@opentelemetry/sdk-trace-base")
                ])
              return layer(() => ({
                resource,
                metricReader: [
                  prometheus,
                  new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter(), exportIntervalMillis: 10_000 })
                ],
                spanProcessor: new BatchSpanProcessor(new OTLPTraceExporter())
              }))
            })
          )
        : OtelMetrics.layer(() => prometheus).pipe(Layer.provide(Resource.layerFromEnv(Resource.configToAttributes(resource))))
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
