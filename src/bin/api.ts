import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Layer } from "effect"
import { ApiLive } from "../layers/Api.js"

// The checkout api: see README.md for its configuration.
Layer.launch(ApiLive).pipe(
  // a failure (a bad setting at start-up, a port in use) is logged as one line that says what stopped
  Effect.tapErrorCause((cause) => (Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError("the api stopped", cause))),
  NodeRuntime.runMain({ disablePrettyLogger: true, disableErrorReporting: true })
)
