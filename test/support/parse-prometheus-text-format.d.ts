// Types for parse-prometheus-text-format (the package ships none).
declare module "parse-prometheus-text-format" {
  export interface PrometheusSample {
    readonly value?: string
    readonly labels?: Readonly<Record<string, string>>
    readonly buckets?: Readonly<Record<string, string>>
    readonly count?: string
    readonly sum?: string
  }
  export interface PrometheusFamily {
    readonly name: string
    readonly help: string
    readonly type: "COUNTER" | "GAUGE" | "HISTOGRAM" | "SUMMARY" | "UNTYPED"
    readonly metrics: ReadonlyArray<PrometheusSample>
  }
  /** Parses the Prometheus text exposition format into metric families; throws on malformed input. */
  export default function parsePrometheusTextFormat(text: string): ReadonlyArray<PrometheusFamily>
}
