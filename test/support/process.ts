/** Small helpers for tests that run the project's entry points as real processes. */
import { spawn } from "node:child_process"
import { join, resolve } from "node:path"

const ROOT = resolve(import.meta.dirname, "../..")

/** How a process ended, and what it printed. */
export interface Ended {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly output: string
}

/**
 * Runs `entry` (relative to the repo root) as `node --import tsx` until it exits; fails if it is
 * still running after `timeoutMs` (and kills it).
 */
export const runToExit = (entry: string, env: Record<string, string>, timeoutMs = 60_000) =>
  new Promise<Ended>((ok, fail) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, entry)], {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: "Warning", ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.on("data", (d: Buffer) => (output += d.toString()))
    child.stderr.on("data", (d: Buffer) => (output += d.toString()))
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      fail(new Error(`${entry} did not exit within ${timeoutMs} ms:\n${output}`))
    }, timeoutMs)
    child.once("exit", (code, signal) => {
      clearTimeout(timer)
      ok({ code, signal, output })
    })
  })

/** Polls `probe` every 100 ms until it gives a value; fails after `timeoutMs`. */
export const waitFor = async <T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}
