/**
 * Starting the project's own processes (api, fake inventory, worker) on free ports for tests and
 * scripts: `node --import tsx <entry>`, one process each so that signals reach them, waiting for
 * their `/health`.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:net"
import { join, resolve } from "node:path"

/** The repository root. */
export const ROOT = resolve(import.meta.dirname, "../..")

/** A free TCP port on 127.0.0.1. */
export const freePort = (): Promise<number> =>
  new Promise((ok, fail) => {
    const server = createServer()
    server.once("error", fail)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => ok(port))
    })
  })

/** A started process: its base url, output so far, and how to stop or kill it. */
export interface Running {
  readonly url: string
  readonly port: number
  readonly child: ChildProcess
  readonly output: () => string
  /** SIGTERM, then waits for the exit code. */
  readonly stop: () => Promise<number | null>
  /** SIGKILL, then waits for the exit. */
  readonly kill: () => Promise<void>
}

const waitHealthy = async (url: string, child: ChildProcess, output: () => string, timeoutMs = 30_000) => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`process exited with ${child.exitCode}:\n${output()}`)
    try {
      const res = await fetch(`${url}/health`)
      if (res.ok) return
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${url} not healthy within ${timeoutMs} ms:\n${output()}`)
}

/** Starts `entry` (relative to the repo root) with `env` on a free `PORT`. */
export const startProcess = async (entry: string, env: Record<string, string>, port?: number): Promise<Running> => {
  const chosen = port ?? (await freePort())
  const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, entry)], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: "Warning", ...env, PORT: String(chosen), HOST: "127.0.0.1" },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let out = ""
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()))
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()))
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)))
  const url = `http://127.0.0.1:${chosen}`
  const output = () => out
  try {
    await waitHealthy(url, child, output)
  } catch (error) {
    // never healthy: do not leave it running behind the caller's back
    if (child.exitCode === null) child.kill("SIGKILL")
    await exited
    throw error
  }
  return {
    url,
    port: chosen,
    child,
    output,
    stop: () => {
      if (child.exitCode === null) child.kill("SIGTERM")
      return exited
    },
    kill: async () => {
      if (child.exitCode === null) child.kill("SIGKILL")
      await exited
    }
  }
}

