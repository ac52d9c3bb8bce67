/**
 * A fake of the BookVerse inventory service (INVENTORY_CONTRACT.md) with seeded demo data and
 * scriptable faults. Run it as a process (`src/bin/fake-inventory.ts`), in a Layer
 * (`FakeInventoryServer.layer`), or from a plain test (`startFakeInventory`).
 */
import { ManagedRuntime } from "effect"
import { FakeInventoryServer, type FakeInventoryOptions, type RunningFakeInventory } from "./Server.js"

export * from "./Catalog.js"
export * from "./Config.js"
export * from "./Faults.js"
export * from "./Server.js"
export * from "./Stats.js"
export * from "./Store.js"
export * from "./Validation.js"

/** A fake started by {@link startFakeInventory}: where it listens, its state, and how to stop it. */
export interface StartedFakeInventory extends RunningFakeInventory {
  /** Stops listening, drops every open connection (hanging requests included) and resolves. */
  readonly close: () => Promise<void>
}

/**
 * Starts the fake in this process for a test (port 0 by default: a free port) and resolves once it
 * listens, with its base `url` (e.g. "http://127.0.0.1:41234"), `port`, live `store`, `stats`,
 * `faults` and `close()`. Rejects if it cannot listen. Options: {@link FakeInventoryOptions}.
 */
export const startFakeInventory = async (options: FakeInventoryOptions = {}): Promise<StartedFakeInventory> => {
  const runtime = ManagedRuntime.make(FakeInventoryServer.layer(options))
  try {
    const running = await runtime.runPromise(FakeInventoryServer)
    return { ...running, close: () => runtime.dispose() }
  } catch (error) {
    await runtime.dispose()
    throw error
  }
}
