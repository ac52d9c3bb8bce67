/**
 * Entry point of the fake inventory process. PORT (default 8001) and HOST (default 0.0.0.0), plus
 * the FAKE_INVENTORY_* variables of `src/fake-inventory/Config.ts`. SIGTERM/SIGINT stop it with
 * exit code 0.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Config, Effect, Layer } from "effect"
import { fakeInventoryOptionsFromEnv, FakeInventoryServer } from "../fake-inventory/index.js"
import { LoggingLive } from "../layers/Logging.js"

const FakeInventoryLive = Layer.unwrapEffect(Effect.gen(function*() {
  const port = yield* Config.port("PORT").pipe(Config.withDefault(8001))
  const host = yield* Config.string("HOST").pipe(Config.withDefault("0.0.0.0"))
  const options = yield* fakeInventoryOptionsFromEnv
  return FakeInventoryServer.layer({ ...options, port, host })
}))

const Announce = Layer.effectDiscard(Effect.gen(function*() {
  const server = yield* FakeInventoryServer
  yield* Effect.logInfo("fake inventory listening").pipe(
    Effect.annotateLogs({ url: server.url, host: server.host, port: server.port, faults: server.faults !== undefined })
  )
}))

Announce.pipe(
  Layer.provide(FakeInventoryLive),
  Layer.provide(NodeContext.layer),
  Layer.launch,
  Effect.tapErrorCause((cause) => Effect.logError("fake inventory stopped", cause)),
  // the same JSON lines as the api and the worker (`LOG_LEVEL` sets the level)
  Effect.provide(LoggingLive),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
)
