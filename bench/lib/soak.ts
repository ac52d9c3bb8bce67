/**
 * The soak's heap series and its verdict: does the heap used after a full GC grow with the
 * number of orders, beyond noise?
 */
import { median } from "./report.js"

/** One sample of the api's memory, taken after `orders` orders. */
export interface HeapSample {
  readonly orders: number
  /** V8 heap in use right after two forced full GCs, MB (10^6 bytes). */
  readonly heapUsedAfterGcMB: number
  readonly rssMB: number
}

/** The verdict on a series. */
export interface HeapVerdict {
  readonly flat: boolean
  /** Median of the last third of the samples minus the median of the first third, MB. */
  readonly growthMB: number
  /** The limit the growth was held to, MB. */
  readonly noiseMB: number
  /** Least-squares slope over the judged samples, bytes per order. */
  readonly bytesPerOrder: number
  readonly detail: string
}

/** Reads the heap probe (`bench/probe/heap.ts`) listening on `port`. */
export const readHeap = async (port: number): Promise<{ readonly heapUsedAfterGc: number; readonly rss: number }> => {
  const res = await fetch(`http://127.0.0.1:${port}/heap`)
  const body: unknown = await res.json()
  if (
    typeof body !== "object" || body === null || !("heapUsedAfterGc" in body) || typeof body.heapUsedAfterGc !== "number" ||
    !("rss" in body) || typeof body.rss !== "number"
  ) {
    throw new Error(`heap probe answered ${res.status} ${JSON.stringify(body)}`)
  }
  return { heapUsedAfterGc: body.heapUsedAfterGc, rss: body.rss }
}

/**
 * Judges a series sampled every N orders. The first sample (before any measured order: caches,
 * prepared statements and lazily built code are still filling) is left out; of the rest, the
 * median of the first third is compared with the median of the last third. Flat when the growth
 * is at most the noise allowance: the larger of 2 MB and 5% of the early median.
 */
export const judgeHeap = (samples: ReadonlyArray<HeapSample>): HeapVerdict => {
  const judged = samples.slice(1)
  if (judged.length < 2) {
    return { flat: false, growthMB: 0, noiseMB: 0, bytesPerOrder: 0, detail: "too few samples to judge" }
  }
  const third = Math.max(1, Math.floor(judged.length / 3))
  const early = median(judged.slice(0, third).map((s) => s.heapUsedAfterGcMB))
  const late = median(judged.slice(-third).map((s) => s.heapUsedAfterGcMB))
  const growthMB = Math.round((late - early) * 100) / 100
  const noiseMB = Math.round(Math.max(2, early * 0.05) * 100) / 100
  const n = judged.length
  const mx = judged.reduce((a, s) => a + s.orders, 0) / n
  const my = judged.reduce((a, s) => a + s.heapUsedAfterGcMB, 0) / n
  const sxy = judged.reduce((a, s) => a + (s.orders - mx) * (s.heapUsedAfterGcMB - my), 0)
  const sxx = judged.reduce((a, s) => a + (s.orders - mx) ** 2, 0)
  const bytesPerOrder = sxx === 0 ? 0 : Math.round((sxy / sxx) * 1e6 * 10) / 10
  const flat = growthMB <= noiseMB
  return {
    flat,
    growthMB,
    noiseMB,
    bytesPerOrder,
    detail: `heap after GC ${early.toFixed(2)} -> ${late.toFixed(2)} MB (growth ${growthMB.toFixed(2)} MB, allowed ${noiseMB.toFixed(2)} MB; slope ${bytesPerOrder} B/order)`
  }
}
