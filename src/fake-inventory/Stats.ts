/**
 * Request accounting for the fake inventory (`GET /__stats`): how many requests are in flight now
 * and at most, per-route request counts and injected-fault counts. Tests use `maxInFlight` to
 * check that checkout bounds its concurrency to the inventory (INVENTORY_CONTRACT.md: "Keep the
 * number of requests in flight to it bounded").
 */
import type { FaultKind, RouteName } from "./Faults.js"

/** The body of `GET /__stats`. */
export interface StatsSnapshot {
  readonly inFlight: number
  readonly maxInFlight: number
  readonly requests: Readonly<Record<RouteName, number>>
  readonly faultsInjected: Readonly<Record<FaultKind, number>>
}

const zeroRequests = (): Record<RouteName, number> => ({ getStock: 0, adjust: 0, transactions: 0, list: 0, health: 0 })

const zeroFaults = (): Record<FaultKind, number> => ({
  latency: 0,
  status: 0,
  reset: 0,
  refuse: 0,
  hang: 0,
  applyThenFail: 0
})

/** Mutable counters, updated synchronously by the server for every inventory route request. */
export class Stats {
  private inFlight = 0
  private maxInFlight = 0
  private requests = zeroRequests()
  private faults = zeroFaults()

  /** A request to `route` started (counted, and in flight until {@link end}). */
  begin(route: RouteName): void {
    this.requests[route]++
    this.inFlight++
    if (this.inFlight > this.maxInFlight) this.maxInFlight = this.inFlight
  }

  /** A request finished, however it ended (answered, dropped, or abandoned by its client). */
  end(): void {
    this.inFlight--
  }

  /** A fault of `kind` was injected. */
  faultInjected(kind: FaultKind): void {
    this.faults[kind]++
  }

  /** The current counters (a copy). */
  snapshot(): StatsSnapshot {
    return {
      inFlight: this.inFlight,
      maxInFlight: this.maxInFlight,
      requests: { ...this.requests },
      faultsInjected: { ...this.faults }
    }
  }

  /** Zeroes the counters; `maxInFlight` restarts from the requests in flight now (0 when idle). */
  reset(): void {
    this.maxInFlight = this.inFlight
    this.requests = zeroRequests()
    this.faults = zeroFaults()
  }
}
