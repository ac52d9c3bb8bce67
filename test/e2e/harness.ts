/**
 * End-to-end harness: starts the real api and the real fake inventory as processes on free ports
 * (`node --import tsx`, one process each, so signals reach them), waits for their health, and
 * stops them in a finaliser.
 */
import { randomUUID } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startProcess } from "../../scripts/lib/processes.js"

export { freePort, type Running, startProcess } from "../../scripts/lib/processes.js"

/** The fake inventory as a process, fault injection on. */
export const startFakeInventory = (env: Record<string, string> = {}) =>
  startProcess("src/bin/fake-inventory.ts", { FAKE_INVENTORY_FAULTS: "1", ...env })

/** A temporary folder for a database file, removed by the returned function. */
export const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "checkout-e2e-"))
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) }
}

/** The api as a process against `inventoryUrl`, with a fresh SQLite file in `dir`. */
export const startApi = (inventoryUrl: string, dir: string, env: Record<string, string> = {}, port?: number) =>
  startProcess(
    "src/bin/api.ts",
    { INVENTORY_BASE_URL: inventoryUrl, DATABASE_URL: `sqlite:///${join(dir, "checkout.db")}`, ...env },
    port
  )

/** JSON over HTTP: status, headers and parsed body. */
export const request = async (
  url: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string>; raw?: string } = {}
) => {
  const hasBody = init.body !== undefined || init.raw !== undefined
  const res = await fetch(url, {
    method: init.method ?? (hasBody ? "POST" : "GET"),
    headers: { ...(hasBody ? { "content-type": "application/json" } : {}), ...init.headers },
    ...(hasBody ? { body: init.raw ?? JSON.stringify(init.body) } : {})
  })
  const text = await res.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, body }
}

/** Copies available of `bookId` according to the inventory. */
export const stockOf = async (inventoryUrl: string, bookId: string): Promise<number> => {
  const res = await request(`${inventoryUrl}/api/v1/inventory/${bookId}`)
  const body = res.body
  if (
    typeof body === "object" && body !== null && "inventory" in body && typeof body.inventory === "object" &&
    body.inventory !== null && "quantity_available" in body.inventory && typeof body.inventory.quantity_available === "number"
  ) {
    return body.inventory.quantity_available
  }
  throw new Error(`no stock for ${bookId}: ${res.status} ${JSON.stringify(body)}`)
}

/** Sets a book's stock on the fake (admin route). */
export const setStock = async (inventoryUrl: string, bookId: string, quantity: number) => {
  const res = await request(`${inventoryUrl}/__stock`, { body: { bookId, quantity } })
  if (res.status >= 300) throw new Error(`setStock failed: ${res.status} ${JSON.stringify(res.body)}`)
}

/** A fresh book on the fake with `quantity` copies (a new UUID), so tests never share stock. */
export const newBook = async (inventoryUrl: string, quantity: number) => {
  const id = randomUUID()
  await setStock(inventoryUrl, id, quantity)
  return id
}

/** Adds a fault rule on the fake (admin route). */
export const addFault = async (inventoryUrl: string, rule: unknown) => {
  const res = await request(`${inventoryUrl}/__faults`, { body: rule })
  if (res.status >= 300) throw new Error(`addFault failed: ${res.status} ${JSON.stringify(res.body)}`)
}

/** A request body for `POST /orders`. */
export const orderBody = (items: ReadonlyArray<readonly [string, number, number | string]>, userId = "reader-e2e") => ({
  userId,
  items: items.map(([bookId, qty, unitPrice]) => ({ bookId, qty, unitPrice }))
})
