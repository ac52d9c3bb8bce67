/**
 * Summarises a V8 CPU profile (`node --cpu-prof`): the functions with the most self time, and
 * self time by where the code lives (a package, node's internals, the app's own files).
 */
import { readFileSync } from "node:fs"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}
interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
}
interface CpuProfile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const isCpuProfile = (value: unknown): value is CpuProfile =>
  typeof value === "object" && value !== null && "nodes" in value && Array.isArray(value.nodes) &&
  "samples" in value && Array.isArray(value.samples) && "timeDeltas" in value && Array.isArray(value.timeDeltas)

/** Self time of one function or one place, in ms and in % of the busy (non-idle) time. */
export interface SelfTime {
  readonly name: string
  readonly ms: number
  readonly percent: number
}

/** What a profile says. */
export interface ProfileSummary {
  /** Sampled time, idle included, ms. */
  readonly totalMs: number
  /** Sampled time not idle, ms. */
  readonly busyMs: number
  readonly topFunctions: ReadonlyArray<SelfTime>
  readonly byPlace: ReadonlyArray<SelfTime>
}

/** Where a script lives: `effect`, `@effect/platform`, `node:internal`, `app:services/Checkout.js`, ... */
export const placeOf = (url: string, functionName: string): string => {
  if (url === "") return functionName.startsWith("(") ? functionName : "(native)"
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)
  if (pkg?.[1] !== undefined) return pkg[1]
  if (url.startsWith("node:")) return "node:internal"
  const app = /\/dist\/(src|bench)\/(.*)$/.exec(url)
  if (app?.[2] !== undefined) return `app:${app[2]}`
  return url.replace(/^file:\/\//, "")
}

const shortUrl = (url: string): string => {
  const pkg = /node_modules\/(.*)$/.exec(url)
  if (pkg?.[1] !== undefined) return pkg[1]
  const app = /\/dist\/(.*)$/.exec(url)
  return app?.[1] ?? url.replace(/^file:\/\//, "")
}

/** Reads `path` (a `.cpuprofile`) and ranks self time; `top` functions are kept (25 by default). */
export const summariseProfile = (path: string, top = 25): ProfileSummary => {
  const parsed: unknown = JSON.parse(readFileSync(path, "utf8"))
  if (!isCpuProfile(parsed)) throw new Error(`${path} is not a V8 CPU profile`)
  const byId = new Map<number, ProfileNode>()
  for (const node of parsed.nodes) byId.set(node.id, node)
  const selfUs = new Map<number, number>()
  parsed.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (parsed.timeDeltas[i] ?? 0)))

  const functions = new Map<string, number>()
  const places = new Map<string, number>()
  let totalUs = 0
  let idleUs = 0
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame
    if (frame === undefined) continue
    totalUs += us
    if (frame.functionName === "(idle)") {
      idleUs += us
      continue
    }
    const name = frame.url === ""
      ? frame.functionName || "(anonymous)"
      : `${frame.functionName || "(anonymous)"}  ${shortUrl(frame.url)}:${frame.lineNumber + 1}`
    functions.set(name, (functions.get(name) ?? 0) + us)
    const place = placeOf(frame.url, frame.functionName)
    places.set(place, (places.get(place) ?? 0) + us)
  }
  const busyUs = totalUs - idleUs
  const rank = (m: Map<string, number>, n: number): Array<SelfTime> =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, ms: Math.round(us / 100) / 10, percent: busyUs === 0 ? 0 : Math.round((us / busyUs) * 1000) / 10 }))
  return {
    totalMs: Math.round(totalUs / 1000),
    busyMs: Math.round(busyUs / 1000),
    topFunctions: rank(functions, top),
    byPlace: rank(places, 20)
  }
}
