/**
 * The local stack: the fake inventory (demo catalog) on 8001, the checkout api on 8000 with a
 * SQLite file, and the outbox worker (health on 8002) delivering `order.created` events, their logs
 * prefixed, all stopped by Ctrl-C. The worker starts once the api is up (the api migrates the
 * database) and publishes to NATS JetStream when EVENTS_NATS_URL is set (or to EVENTS_WEBHOOK_URL);
 * with neither, events stay in the outbox. Ports and the database can be changed with
 * STACK_API_PORT, STACK_INVENTORY_PORT, STACK_WORKER_PORT and DATABASE_URL.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:net"
import { createInterface } from "node:readline"
import { Schema } from "effect"

const Listing = Schema.Struct({
  items: Schema.Array(
    Schema.Struct({
      book: Schema.Struct({ id: Schema.String, title: Schema.String, price: Schema.String }),
      inventory: Schema.Struct({ quantity_available: Schema.Number })
    })
  )
})

const apiPort = process.env.STACK_API_PORT ?? "8000"
const inventoryPort = process.env.STACK_INVENTORY_PORT ?? "8001"
const workerPort = process.env.STACK_WORKER_PORT ?? "8002"
const databaseUrl = process.env.DATABASE_URL ?? "sqlite:///./checkout.db"

const children: Array<ChildProcess> = []
const start = (name: string, entry: string, env: Record<string, string>) => {
  // `node --import tsx`, not the tsx wrapper: one process per service, and only the stack's own
  // SIGTERM reaches it (detached: a terminal's Ctrl-C goes to the stack, which then stops each
  // child once, gracefully)
  const child = spawn(process.execPath, ["--import", "tsx", entry], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true
  })
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => process.stdout.write(`${name.padEnd(9)}| ${line}\n`))
  }
  child.on("exit", (code, signal) => {
    process.stdout.write(`${name.padEnd(9)}| exited (${signal ?? code})\n`)
    if (!stopping) stop(1)
  })
  children.push(child)
  return child
}

let stopping = false
const stop = (code: number) => {
  if (stopping) return
  stopping = true
  for (const child of children) child.kill("SIGTERM")
  setTimeout(() => process.exit(code), 12_000).unref()
  Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.on("exit", r))))).then(() =>
    process.exit(code)
  )
}
process.on("SIGINT", () => stop(0))
process.on("SIGTERM", () => stop(0))

const waitFor = async (url: string, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).ok) return true
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  return false
}

/** Whether something already listens on `port` (another stack, say): then its health would pass for ours. */
const inUse = (port: string) =>
  new Promise<boolean>((resolve) => {
    const probe = createServer()
    probe.once("error", () => resolve(true))
    probe.listen(Number(port), "0.0.0.0", () => probe.close(() => resolve(false)))
  })
const busy: Array<string> = []
for (const [name, port] of [["STACK_API_PORT", apiPort], ["STACK_INVENTORY_PORT", inventoryPort], ["STACK_WORKER_PORT", workerPort]] as const) {
  if (await inUse(port)) busy.push(`port ${port} (${name})`)
}
if (busy.length > 0) {
  process.stdout.write(
    `cannot start the stack: ${busy.join(", ")} already in use (another stack?).\n` +
      "Stop it, or choose free ports with STACK_API_PORT, STACK_INVENTORY_PORT and STACK_WORKER_PORT\n" +
      "(and another DATABASE_URL, e.g. sqlite:///./checkout-2.db, so that the two stacks do not share a database).\n"
  )
  process.exit(1)
}

start("inventory", "src/bin/fake-inventory.ts", { PORT: inventoryPort })
start("api", "src/bin/api.ts", {
  PORT: apiPort,
  INVENTORY_BASE_URL: `http://127.0.0.1:${inventoryPort}`,
  DATABASE_URL: databaseUrl
})

const apiUp = (await waitFor(`http://127.0.0.1:${inventoryPort}/health`, 30_000)) &&
  (await waitFor(`http://127.0.0.1:${apiPort}/health`, 30_000))
// After the api: it has migrated the database the worker reads.
if (apiUp) start("worker", "src/bin/worker.ts", { PORT: workerPort, DATABASE_URL: databaseUrl })
const up = apiUp && (await waitFor(`http://127.0.0.1:${workerPort}/health`, 30_000))
if (!up) {
  process.stdout.write("stack did not come up within 30 s\n")
  stop(1)
} else {
  const listing = Schema.decodeUnknownSync(Listing)(
    await (await fetch(`http://127.0.0.1:${inventoryPort}/api/v1/inventory?per_page=3`)).json()
  )
  const events = process.env.EVENTS_NATS_URL
    ? `NATS ${process.env.EVENTS_NATS_URL}, stream ${process.env.EVENTS_NATS_STREAM ?? "BOOKVERSE_ORDERS"}, subject ${process.env.EVENTS_NATS_SUBJECT ?? "bookverse.orders.created"}`
    : process.env.EVENTS_WEBHOOK_URL
    ? `webhook ${process.env.EVENTS_WEBHOOK_URL}`
    : "nowhere yet: set EVENTS_NATS_URL=nats://127.0.0.1:4222 (or EVENTS_WEBHOOK_URL)"
  const lines = listing.items.map((i) => `    ${i.book.id}  ${i.book.price.padStart(6)}  x${i.inventory.quantity_available}  ${i.book.title}`)
  process.stdout.write(
    [
      "",
      "BookVerse Checkout is up:",
      `  api             http://localhost:${apiPort}   (API reference: http://localhost:${apiPort}/docs, OpenAPI: /openapi.json)`,
      `  fake inventory  http://localhost:${inventoryPort}   (books: http://localhost:${inventoryPort}/api/v1/inventory)`,
      `  outbox worker   http://localhost:${workerPort}/health   (order.created events go to ${events})`,
      "  some books:",
      ...lines,
      "  Ctrl-C stops all three.",
      ""
    ].join("\n") + "\n"
  )
}
