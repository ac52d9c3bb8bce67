import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Layer } from "effect"
import { WorkerLive } from "../layers/Worker.js"

// The outbox worker: delivers order events; configuration in src/layers/Worker.ts and README.md.
Layer.launch(WorkerLive).pipe(
  // a failure (a bad setting at start-up, a port in use) is logged as one line that says what stopped
  Effect.tapErrorCause((cause) => (Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError("the outbox worker stopped", cause))),
  NodeRuntime.runMain({ disablePrettyLogger: true, disableErrorReporting: true })
)
