import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Layer } from "effect"
import { ApiLive } from "../layers/Api.js"

// The checkout api: see README.md for its configuration.
Layer.launch(ApiLive).pipe(NodeRuntime.runMain({ disablePrettyLogger: true }))
