import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Effect, Layer } from "effect"
import { Agent } from "undici"

/**
 * A pooled keep-alive HTTP client (undici) for the inventory: connect timeout 1 s
 * (ARCHITECTURE.md, "Inventory client policy"), idle connections kept 10 s.
 */
export const InventoryHttpClientLive = NodeHttpClient.layerUndiciWithoutDispatcher.pipe(
  Layer.provide(
    Layer.scoped(
      NodeHttpClient.Dispatcher,
      Effect.acquireRelease(
        Effect.sync(() => new Agent({ connect: { timeout: 1_000 }, keepAliveTimeout: 10_000, pipelining: 1 })),
        (agent) => Effect.promise(() => agent.destroy())
      )
    )
  )
)
