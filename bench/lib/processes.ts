/**
 * The processes a bench run drives: the fake inventory, the api and the baseline, each a
 * `node` child on a free port of 127.0.0.1 with its output in a log file, plus what the bench
 * reads about them from /proc (resident memory, CPU time).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"

import { freePort } from "../../scripts/lib/processes.js"

export { freePort }

/**
 * The node flags the api runs with in production (the Dockerfile's `CMD`; a unit test keeps the two
 * equal), so the bench measures the api as it is deployed. Uncapped, V8 lets the old space grow to
 * several times the live heap (~40-50 MB under load) before a full collection, and the api's RSS
 * passed 400 MB in the bench; capped at 128 MB it stays at ~170-190 MB. The semi-spaces are pinned at
 * V8's 64-bit default of 16 MB: 8 MB would save ~15 MB of RSS but doubles the scavenges (the GC's
 * share of CPU went from ~8% to ~14% in `--cpu-prof`); a 64 MB old space makes the GC thrash (40%).
 */
export const apiNodeFlags: ReadonlyArray<string> = ["--max-old-space-size=128", "--max-semi-space-size=16"]

/** A started child process: where it listens, its pid, its log file, and how to stop it. */
export interface Service {
  readonly name: string
  readonly url: string
  readonly port: number
  readonly pid: number
  readonly logFile: string
  /** SIGTERM, then waits for the exit (SIGKILL after `graceMs`); resolves with the exit code. */
  readonly stop: (graceMs?: number) => Promise<number | null>
}

/** What to start: a script run by `node`, with extra node flags and environment. */
export interface ServiceSpec {
  readonly name: string
  /** Path of the JavaScript entry point. */
  readonly entry: string
  readonly nodeFlags?: ReadonlyArray<string>
  readonly env: Record<string, string>
  /** Folder for the log file `<name>.log`. */
  readonly dir: string
  /** Working directory (default: the current one). */
  readonly cwd?: string
  /** Path answered 200 once the service is ready (default `/health`). */
  readonly readyPath?: string
}

const waitReady = async (url: string, child: ChildProcess, logFile: string, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`${url}: process exited with ${child.exitCode}:\n${readFileSync(logFile, "utf8").slice(-4000)}`)
    }
    try {
      if ((await fetch(url)).ok) return
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms:\n${readFileSync(logFile, "utf8").slice(-4000)}`)
}

/**
 * Starts `spec.entry` with `node` on a free port (`PORT`, `HOST=127.0.0.1`), stdout and stderr
 * to `<dir>/<name>.log` (a file, so the bench process spends nothing reading it), and resolves
 * once `readyPath` answers 200.
 */
export const startService = async (spec: ServiceSpec): Promise<Service> => {
  const port = await freePort()
  const logFile = join(spec.dir, `${spec.name}.log`)
  const fd = openSync(logFile, "a")
  const child = spawn(process.execPath, [...(spec.nodeFlags ?? []), spec.entry], {
    cwd: spec.cwd ?? process.cwd(),
    env: { ...process.env, ...spec.env, PORT: String(port), HOST: "127.0.0.1" },
    stdio: ["ignore", fd, fd]
  })
  closeSync(fd)
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  const url = `http://127.0.0.1:${port}`
  try {
    await waitReady(`${url}${spec.readyPath ?? "/health"}`, child, logFile, 30_000)
  } catch (error) {
    child.kill("SIGKILL")
    throw error
  }
  const pid = child.pid
  if (pid === undefined) throw new Error(`${spec.name}: no pid`)
  return {
    name: spec.name,
    url,
    port,
    pid,
    logFile,
    stop: async (graceMs = 15_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      child.kill("SIGTERM")
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs)
      const code = await exited
      clearTimeout(timer)
      return code
    }
  }
}

/** Writes a seed file for the fake inventory: `books` books with `copies` copies each; returns its path and the ids. */
export const writeSeed = (dir: string, books: number, copies: number): { readonly path: string; readonly bookIds: ReadonlyArray<string> } => {
  const bookIds = Array.from({ length: books }, (_, i) => `00000000-0000-4000-8000-${String(i + 1).padStart(12, "0")}`)
  const seed = bookIds.map((bookId, i) => ({
    bookId,
    title: `Bench book ${i + 1}`,
    price: `${10 + (i % 10)}.${String((i * 7) % 100).padStart(2, "0")}`,
    quantity: copies
  }))
  const path = join(dir, "seed.json")
  writeFileSync(path, JSON.stringify(seed))
  return { path, bookIds }
}

// ---------------------------------------------------------------------------------------------
// /proc: memory and CPU of a process
// ---------------------------------------------------------------------------------------------

const kib = (status: string, field: string): number | undefined => {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)
  return match?.[1] === undefined ? undefined : Number(match[1]) * 1024
}

/** Resident memory of `pid` in bytes now (`VmRSS`) and at its peak so far (`VmHWM`); `ps` where there is no /proc. */
export const memoryOf = (pid: number): { readonly rss: number; readonly peak: number } | undefined => {
  const path = `/proc/${pid}/status`
  if (existsSync(path)) {
    try {
      const status = readFileSync(path, "utf8")
      const rss = kib(status, "VmRSS")
      if (rss === undefined) return undefined
      return { rss, peak: kib(status, "VmHWM") ?? rss }
    } catch {
      return undefined // it exited
    }
  }
  try {
    const rss = Number(execFileSync("ps", ["-o", "rss=", "-p", String(pid)], { encoding: "utf8" }).trim()) * 1024
    return Number.isFinite(rss) && rss > 0 ? { rss, peak: rss } : undefined
  } catch {
    return undefined
  }
}

let clockTicks: number | undefined
const ticksPerSecond = (): number => {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100
    } catch {
      clockTicks = 100
    }
  }
  return clockTicks
}

/** CPU time (user + system) `pid` has used so far, in seconds; undefined without /proc. */
export const cpuSecondsOf = (pid: number): number | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // fields after the command name, which is in parentheses and may contain spaces
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    const utime = Number(fields[11])
    const stime = Number(fields[12])
    return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / ticksPerSecond() : undefined
  } catch {
    return undefined
  }
}

/** Samples a process's resident memory every `intervalMs` until stopped. */
export interface MemorySampler {
  /** Stops sampling; the highest VmRSS seen (bytes) and the number of samples. */
  readonly stop: () => { readonly peakRss: number; readonly samples: number }
}

/** Starts sampling `pid`'s VmRSS every `intervalMs` (100 ms by default). */
export const sampleMemory = (pid: number, intervalMs = 100): MemorySampler => {
  let peakRss = 0
  let samples = 0
  const take = () => {
    const memory = memoryOf(pid)
    if (memory !== undefined) {
      samples++
      peakRss = Math.max(peakRss, memory.rss)
    }
  }
  take()
  const timer = setInterval(take, intervalMs)
  return {
    stop: () => {
      clearInterval(timer)
      take()
      return { peakRss, samples }
    }
  }
}
