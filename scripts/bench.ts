/**
 * `npm run bench`: the checkout api (production build) beside the hand-written baseline
 * (`bench/baseline/server.ts`), both against the fake inventory (no faults, 50 books x 10,000,000
 * copies), driven by autocannon. Prints a table of medians, the product/baseline ratios and the
 * budgets (PASS/FAIL), and writes everything as JSON under `bench/results/`.
 *
 * Options:
 *   --duration <s>      seconds per measured run (10)
 *   --rounds <n>        A/B rounds, product then baseline per scenario (3)
 *   --scenarios <list>  comma-separated scenario names, or "none" (all)
 *   --no-baseline       drive the product only
 *   --soak              also push --soak-orders orders through a fresh api, sampling the heap after GC
 *   --soak-orders <n>   (100000)   --soak-every <n> (10000)
 *   --cpu-prof          run the product api under `node --cpu-prof` and summarise the profile
 *   --api-node-flags="<flags>"  node flags for the product api, after the production ones (`apiNodeFlags`,
 *                      the Dockerfile's), e.g. --api-node-flags="--max-old-space-size=256"
 *   --smoke             a quick run to keep the bench working: 1 s per scenario, 1 round, a 400-order soak
 *   --out <file>        where to write the JSON (bench/results/bench-<time>.json)
 *   --no-build          use dist/ as it is
 *   --keep              keep the temporary folder (databases, logs, seed)
 * Exit code 1 when a budget fails (not in --smoke) or a run could not be made.
 */
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Effect } from "effect"
import { execFileSync, type ExecFileSyncOptionsWithStringEncoding, spawnSync } from "node:child_process"
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { cpus, tmpdir, totalmem } from "node:os"
import { dirname, join, resolve } from "node:path"
import { parseArgs } from "node:util"
import {
  newOrder,
  orderBody,
  placeOrders,
  readOrders,
  replayOf,
  type RequestShape,
  runLoad
} from "../bench/lib/load.js"
import { apiNodeFlags, cpuSecondsOf, freePort, memoryOf, sampleMemory, type Service, startService, writeSeed } from "../bench/lib/processes.js"
import { type ProfileSummary, summariseProfile } from "../bench/lib/profile.js"
import {
  budgetLines,
  checkBudgets,
  ratios,
  ratioTable,
  type RunRecord,
  summarise,
  summaryTable,
  table,
  type Target
} from "../bench/lib/report.js"
import { type HeapSample, type HeapVerdict, judgeHeap, readHeap } from "../bench/lib/soak.js"
import { migrate } from "../src/layers/Migrations.js"

const ROOT = resolve(import.meta.dirname, "..")

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

const { values: args } = parseArgs({
  options: {
    duration: { type: "string" },
    rounds: { type: "string" },
    scenarios: { type: "string" },
    "no-baseline": { type: "boolean", default: false },
    soak: { type: "boolean", default: false },
    "soak-orders": { type: "string" },
    "soak-every": { type: "string" },
    "cpu-prof": { type: "boolean", default: false },
    "api-node-flags": { type: "string" },
    smoke: { type: "boolean", default: false },
    out: { type: "string" },
    "no-build": { type: "boolean", default: false },
    keep: { type: "boolean", default: false }
  }
})

const positive = (name: string, raw: string | undefined, fallback: number): number => {
  if (raw === undefined) return fallback
  const n = Number(raw)
  if (!Number.isFinite(n) || n <= 0) {
    process.stderr.write(`--${name} must be a positive number, not ${JSON.stringify(raw)}\n`)
    process.exit(2)
  }
  return n
}

const smoke = args.smoke
const options = {
  durationSeconds: positive("duration", args.duration, smoke ? 1 : 10),
  rounds: Math.round(positive("rounds", args.rounds, smoke ? 1 : 3)),
  warmupSeconds: smoke ? 1 : 3,
  baseline: !args["no-baseline"],
  soak: args.soak || smoke,
  soakOrders: Math.round(positive("soak-orders", args["soak-orders"], smoke ? 400 : 100_000)),
  soakEvery: Math.round(positive("soak-every", args["soak-every"], smoke ? 100 : 10_000)),
  cpuProf: args["cpu-prof"],
  apiNodeFlags: [...apiNodeFlags, ...(args["api-node-flags"] ?? "").split(" ").filter((f) => f !== "")],
  smoke,
  books: 50,
  copies: 10_000_000
}

/** A measured scenario: what each request is, and at how many connections. */
interface Scenario {
  readonly name: string
  readonly connections: number
  readonly kind: "new" | "replay" | "read"
  /** Lines per order (new orders). */
  readonly lines: number
}

const ALL_SCENARIOS: ReadonlyArray<Scenario> = [
  { name: "1-line@32", connections: 32, kind: "new", lines: 1 },
  { name: "5-line@32", connections: 32, kind: "new", lines: 5 },
  { name: "1-line@1", connections: 1, kind: "new", lines: 1 },
  { name: "5-line@1", connections: 1, kind: "new", lines: 5 },
  { name: "replay@32", connections: 32, kind: "replay", lines: 1 },
  { name: "get-order@32", connections: 32, kind: "read", lines: 1 }
]

const scenarios = ((): ReadonlyArray<Scenario> => {
  if (args.scenarios === undefined) return ALL_SCENARIOS
  if (args.scenarios === "none") return []
  const names = args.scenarios.split(",").map((s) => s.trim())
  const unknown = names.filter((n) => !ALL_SCENARIOS.some((s) => s.name === n))
  if (unknown.length > 0) {
    process.stderr.write(`unknown scenarios: ${unknown.join(", ")} (known: ${ALL_SCENARIOS.map((s) => s.name).join(", ")})\n`)
    process.exit(2)
  }
  return ALL_SCENARIOS.filter((s) => names.includes(s.name))
})()

const say = (line: string) => process.stdout.write(`${line}\n`)
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms))
const mb = (bytes: number) => Math.round((bytes / 1e6) * 10) / 10

/** Every process started, so that an interrupted bench (Ctrl-C, a test's timeout) leaves none behind. */
const services: Array<Service> = []
let stopping = false
const signals: ReadonlyArray<NodeJS.Signals> = ["SIGINT", "SIGTERM"]
for (const signal of signals) {
  process.on(signal, () => {
    if (stopping) return
    stopping = true
    say(`\n${signal}: stopping the bench's processes`)
    void Promise.allSettled(services.map((s) => s.stop(2_000))).then(() => process.exit(130))
  })
}

// ---------------------------------------------------------------------------------------------
// Build and processes
// ---------------------------------------------------------------------------------------------

/** The production build of src/ plus the baseline and the heap probe, into dist/. */
const build = () => {
  say("building dist/ (tsc -p bench/tsconfig.json) ...")
  const tsc = join(ROOT, "node_modules", ".bin", "tsc")
  const result = spawnSync(tsc, ["-p", join(ROOT, "bench", "tsconfig.json")], { cwd: ROOT, stdio: "inherit" })
  if (result.status !== 0) throw new Error("the build failed: fix the type errors above (or pass --no-build)")
}

/** Creates the product's tables in a fresh SQLite file by running the product's own migrations. */
const migrateFile = (filename: string) =>
  Effect.runPromise(Effect.asVoid(migrate).pipe(Effect.provide(SqliteClient.layer({ filename }))))

const gitDescribe = (): { readonly commit: string; readonly dirty: boolean } => {
  try {
    const quiet: ExecFileSyncOptionsWithStringEncoding = { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }
    const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], quiet).trim()
    const dirty = execFileSync("git", ["status", "--porcelain"], quiet).trim() !== ""
    return { commit, dirty }
  } catch {
    return { commit: "unknown", dirty: false }
  }
}

// ---------------------------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------------------------

/** What a target needs to be driven: its process, and per-scenario fixtures made on it. */
interface Driven {
  readonly target: Target
  readonly service: Service
  replay?: { readonly body: string; readonly key: string }
  orderIds?: ReadonlyArray<string>
}

const requestsFor = (scenario: Scenario, driven: Driven, bookIds: ReadonlyArray<string>): (() => RequestShape) => {
  switch (scenario.kind) {
    case "new":
      return newOrder(bookIds, scenario.lines)
    case "replay":
      if (driven.replay === undefined) throw new Error("replay fixture missing")
      return replayOf(driven.replay.body, driven.replay.key)
    case "read":
      if (driven.orderIds === undefined) throw new Error("read fixture missing")
      return readOrders(driven.orderIds)
  }
}

/** Creates the order a replay scenario repeats and the orders a read scenario reads. */
const prepareFixtures = async (driven: Driven, bookIds: ReadonlyArray<string>) => {
  const body = orderBody(bookIds, 1)
  const key = `bench-replay-${driven.target}`
  const res = await fetch(`${driven.service.url}/orders`, {
    method: "POST",
    headers: { "content-type": "application/json", "idempotency-key": key },
    body
  })
  await res.arrayBuffer()
  if (res.status !== 201) throw new Error(`${driven.target}: the replay fixture order failed with ${res.status}`)
  driven.replay = { body, key }
  driven.orderIds = await placeOrders(driven.service.url, bookIds, smoke ? 10 : 100)
}

/** One measured run: load, memory sampled every 100 ms, CPU of the target and of the inventory. */
const measure = async (
  scenario: Scenario,
  driven: Driven,
  inventory: Service,
  bookIds: ReadonlyArray<string>,
  round: number
): Promise<RunRecord> => {
  const cpu0 = cpuSecondsOf(driven.service.pid) ?? 0
  const inv0 = cpuSecondsOf(inventory.pid) ?? 0
  const sampler = sampleMemory(driven.service.pid)
  const result = await runLoad({
    url: driven.service.url,
    connections: scenario.connections,
    durationSeconds: options.durationSeconds,
    next: requestsFor(scenario, driven, bookIds)
  })
  const memory = sampler.stop()
  const cpu = (cpuSecondsOf(driven.service.pid) ?? 0) - cpu0
  const inv = (cpuSecondsOf(inventory.pid) ?? 0) - inv0
  // let sagas still in flight when the load stopped finish before the next run starts
  await pause(smoke ? 200 : 1_000)
  return {
    scenario: scenario.name,
    target: driven.target,
    round,
    connections: scenario.connections,
    ok: result.ok,
    non2xx: result.non2xx,
    errors: result.errors,
    durationSeconds: result.durationSeconds,
    okPerSecond: result.okPerSecond,
    latency: result.latency,
    statusCodes: result.statusCodes,
    peakRssMB: mb(memory.peakRss),
    cpuMsPerOk: result.ok === 0 ? 0 : Math.round((cpu * 1000 * 1000) / result.ok) / 1000,
    inventoryCpuPercent: Math.round((inv / result.durationSeconds) * 100)
  }
}

/** The soak: a fresh api with the heap probe preloaded, `orders` 1-line orders at 32 connections. */
const soak = async (
  inventory: Service,
  bookIds: ReadonlyArray<string>,
  dir: string,
  ports: { readonly probe: number }
): Promise<{ samples: Array<HeapSample>; verdict: HeapVerdict; non2xx: number; errors: number; peakRssMB: number; seconds: number }> => {
  const api = await startService({
    name: "api-soak",
    entry: join(ROOT, "dist", "src", "bin", "api.js"),
    nodeFlags: [...options.apiNodeFlags, "--expose-gc", "--import", join(ROOT, "dist", "bench", "probe", "heap.js")],
    env: {
      INVENTORY_BASE_URL: inventory.url,
      DATABASE_URL: `sqlite:///${join(dir, "soak.db")}`,
      LOG_LEVEL: "INFO",
      HEAP_PROBE_PORT: String(ports.probe)
    },
    dir,
    cwd: dir
  })
  services.push(api)
  try {
    const sampler = sampleMemory(api.pid)
    const started = Date.now()
    // warm up (JIT, prepared statements, pools) before the first sample
    await runLoad({ url: api.url, connections: 32, durationSeconds: 0, amount: Math.min(2_000, options.soakEvery), next: newOrder(bookIds, 1) })
    const samples: Array<HeapSample> = []
    const sample = async (orders: number) => {
      // one retry: the probe shares the api's event loop, which a full GC of a large heap can hold up
      const heap = await readHeap(ports.probe).catch(() => pause(1_000).then(() => readHeap(ports.probe))).catch((error: unknown) => {
        const state = memoryOf(api.pid) === undefined ? "the api has exited" : "the api is running"
        const log = existsSync(api.logFile) ? readFileSync(api.logFile, "utf8").slice(-3000) : ""
        throw new Error(`heap probe failed after ${orders} orders (${state}): ${String(error)}\n${log}`)
      })
      const s: HeapSample = { orders, heapUsedAfterGcMB: mb(heap.heapUsedAfterGc), rssMB: mb(heap.rss) }
      samples.push(s)
      say(`  soak  ${String(orders).padStart(7)} orders  heap after GC ${s.heapUsedAfterGcMB.toFixed(2)} MB  RSS ${s.rssMB.toFixed(1)} MB`)
    }
    await pause(500)
    await sample(0)
    let done = 0
    let non2xx = 0
    let errors = 0
    while (done < options.soakOrders) {
      const amount = Math.min(options.soakEvery, options.soakOrders - done)
      const result = await runLoad({ url: api.url, connections: 32, durationSeconds: 0, amount, next: newOrder(bookIds, 1) })
      done += amount
      non2xx += result.non2xx
      errors += result.errors
      await pause(500) // sagas finish
      await sample(done)
    }
    const memory = sampler.stop()
    const lifetimePeak = memoryOf(api.pid)?.peak ?? memory.peakRss
    return {
      samples,
      verdict: judgeHeap(samples),
      non2xx,
      errors,
      peakRssMB: mb(Math.max(memory.peakRss, lifetimePeak)),
      seconds: Math.round((Date.now() - started) / 1000)
    }
  } finally {
    await api.stop()
  }
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

const main = async (): Promise<number> => {
  if (!args["no-build"]) build()
  const dir = mkdtempSync(join(tmpdir(), "checkout-bench-"))
  const startedAt = new Date()
  let exitCode = 0
  try {
    const seed = writeSeed(dir, options.books, options.copies)
    const inventory = await startService({
      name: "inventory",
      entry: join(ROOT, "dist", "src", "bin", "fake-inventory.js"),
      env: { FAKE_INVENTORY_SEED: seed.path, FAKE_INVENTORY_FAULTS: "0", LOG_LEVEL: "INFO" },
      dir
    })
    services.push(inventory)
    say(`fake inventory ${inventory.url} (${options.books} books x ${options.copies} copies), work folder ${dir}`)

    const runs: Array<RunRecord> = []
    let productPeakRssMB: number | undefined
    let profile: ProfileSummary | undefined
    const profileDir = join(dir, "cpu-profile")

    if (scenarios.length > 0) {
      const product: Driven = {
        target: "product",
        service: await startService({
          name: "api",
          entry: join(ROOT, "dist", "src", "bin", "api.js"),
          nodeFlags: [...options.apiNodeFlags, ...(options.cpuProf ? ["--cpu-prof", "--cpu-prof-dir", profileDir] : [])],
          env: { INVENTORY_BASE_URL: inventory.url, DATABASE_URL: `sqlite:///${join(dir, "product.db")}`, LOG_LEVEL: "INFO" },
          dir,
          cwd: dir
        })
      }
      services.push(product.service)
      const targets: Array<Driven> = [product]
      if (options.baseline) {
        const file = join(dir, "baseline.db")
        await migrateFile(file)
        const baseline: Driven = {
          target: "baseline",
          service: await startService({
            name: "baseline",
            entry: join(ROOT, "dist", "bench", "baseline", "server.js"),
            env: { INVENTORY_BASE_URL: inventory.url, DATABASE_FILE: file, LOG_LEVEL: "INFO" },
            dir,
            cwd: dir
          })
        }
        services.push(baseline.service)
        targets.push(baseline)
      }
      say(`api ${product.service.url}${options.baseline ? `, baseline ${targets[1]?.service.url ?? ""}` : ""}`)

      for (const driven of targets) {
        say(`warming up ${driven.target} (${options.warmupSeconds} s of 1-line and of 5-line orders at 32 connections)`)
        for (const lines of [1, 5]) {
          await runLoad({ url: driven.service.url, connections: 32, durationSeconds: options.warmupSeconds, next: newOrder(seed.bookIds, lines) })
        }
        await prepareFixtures(driven, seed.bookIds)
      }

      for (let round = 1; round <= options.rounds; round++) {
        for (const scenario of scenarios) {
          for (const driven of targets) {
            const record = await measure(scenario, driven, inventory, seed.bookIds, round)
            runs.push(record)
            say(
              `round ${round}  ${scenario.name.padEnd(13)} ${driven.target.padEnd(8)}  ${record.okPerSecond.toFixed(1).padStart(7)}/s` +
                `  p50 ${record.latency.p50.toFixed(2)} ms  p99 ${record.latency.p99.toFixed(2)} ms  non-2xx ${record.non2xx}` +
                `  RSS ${record.peakRssMB} MB  CPU ${record.cpuMsPerOk} ms/order`
            )
          }
        }
      }
      productPeakRssMB = mb(memoryOf(product.service.pid)?.peak ?? 0)

      if (options.cpuProf) {
        await product.service.stop()
        const file = existsSync(profileDir) ? readdirSync(profileDir).find((f) => f.endsWith(".cpuprofile")) : undefined
        if (file === undefined) throw new Error("the api wrote no CPU profile")
        const kept = join(ROOT, "bench", "results", `api-${startedAt.toISOString().replace(/[:.]/g, "-")}.cpuprofile`)
        mkdirSync(dirname(kept), { recursive: true })
        copyFileSync(join(profileDir, file), kept)
        profile = summariseProfile(kept)
        say(`\nCPU profile of the api: ${kept}`)
      }
      // the scenario processes are done: free the cores and the memory for the soak
      for (const s of targets) await s.service.stop()
    }

    let soakResult: Awaited<ReturnType<typeof soak>> | undefined
    if (options.soak) {
      say(`\nsoak: ${options.soakOrders} orders, heap after GC every ${options.soakEvery}`)
      soakResult = await soak(inventory, seed.bookIds, dir, { probe: await freePort() })
      productPeakRssMB = Math.max(productPeakRssMB ?? 0, soakResult.peakRssMB)
    }

    // ---- report
    const summaries = summarise(runs)
    const rs = ratios(summaries)
    const budgets = checkBudgets(summaries, {
      productPeakRssMB,
      soak: soakResult === undefined
        ? undefined
        : {
            flat: soakResult.verdict.flat && soakResult.non2xx === 0 && soakResult.errors === 0,
            detail: soakResult.verdict.detail + (soakResult.non2xx + soakResult.errors > 0 ? `; ${soakResult.non2xx} non-2xx, ${soakResult.errors} errors` : "")
          }
    })
    const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? "unknown", memoryGB: Math.round(totalmem() / 1e9), node: process.version }
    say("")
    say(`BookVerse Checkout bench: ${machine.cpus} cores (${machine.cpuModel}), node ${machine.node}; ` +
      `${options.rounds} round(s) x ${options.durationSeconds} s; medians over rounds`)
    if (summaries.length > 0) say(`\n${summaryTable(summaries)}`)
    if (rs.length > 0) say(`\nproduct / baseline (ratio of the medians)\n${ratioTable(rs)}`)
    if (profile !== undefined) {
      say(`\nCPU profile: top self time (${profile.busyMs} ms busy of ${profile.totalMs} ms sampled)`)
      say(table([["function", "self ms", "%"], ...profile.topFunctions.map((f) => [f.name, f.ms.toFixed(1), f.percent.toFixed(1)])], 1))
      say(`\nself time by place`)
      say(table([["place", "self ms", "%"], ...profile.byPlace.map((f) => [f.name, f.ms.toFixed(1), f.percent.toFixed(1)])], 1))
    }
    if (soakResult !== undefined) {
      say(`\nsoak: ${options.soakOrders} orders in ${soakResult.seconds} s, ${soakResult.non2xx} non-2xx, peak RSS ${soakResult.peakRssMB} MB`)
      say(table([["orders", "heap after GC MB", "RSS MB"], ...soakResult.samples.map((s) => [String(s.orders), s.heapUsedAfterGcMB.toFixed(2), s.rssMB.toFixed(1)])], 0))
    }
    say(`\nbudgets${smoke ? " (smoke run: informational)" : ""}\n${budgetLines(budgets)}`)

    const out = resolve(args.out ?? join(ROOT, "bench", "results", `bench-${startedAt.toISOString().replace(/[:.]/g, "-")}.json`))
    mkdirSync(dirname(out), { recursive: true })
    const report = {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      git: gitDescribe(),
      machine,
      options: { ...options, scenarios: scenarios.map((s) => s.name) },
      runs,
      summaries,
      ratios: rs,
      budgets,
      soak: soakResult,
      profile
    }
    writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`)
    say(`\nresults: ${out}`)
    if (!smoke && budgets.some((b) => b.status === "FAIL")) exitCode = 1
  } finally {
    for (const service of [...services].reverse()) await service.stop()
    if (!args.keep) rmSync(dir, { recursive: true, force: true })
    else say(`kept ${dir}`)
  }
  return exitCode
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`)
    process.exit(1)
  }
)
