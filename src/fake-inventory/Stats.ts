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

/** One request as the fake saw it (`GET /__requests`): for checking trace and correlation propagation. */
export interface SeenRequest {
  readonly route: RouteName
  /** The W3C `traceparent` header, if any. */
  readonly traceparent: string | null
  /** The `X-Request-Id` header, if any. */
  readonly requestId: string | null
}

/** How many recent requests `GET /__requests` keeps. */
const RECENT_LIMIT = 2000

/** Mutable counters, updated synchronously by the server for every inventory route request. */
export class Stats {
  private recentRequests: Array<SeenRequest> = []
  private inFlight = 0
  private maxInFlight = 0
  private requests = zeroRequests()
  private faults = zeroFaults()

  /** A request to `route` started (counted, and in flight until {@link end}); `seen` is kept among the recent ones. */
  begin(route: RouteName, seen?: Omit<SeenRequest, "route">): void {
    if (seen !== undefined) {
      this.recentRequests.push({ route, ...seen })
      if (this.recentRequests.length > RECENT_LIMIT) this.recentRequests.splice(0, this.recentRequests.length - RECENT_LIMIT)
    }
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

  /** The most recent requests, oldest first (at most 2000). */
  recent(): ReadonlyArray<SeenRequest> {
    return [...this.recentRequests]
  }

  /** Zeroes the counters and forgets recent requests; `maxInFlight` restarts from the requests in flight now (0 when idle). */
  reset(): void {
    this.recentRequests = []
    this.maxInFlight = this.inFlight
    this.requests = zeroRequests()
    this.faults = zeroFaults()
  }
}
