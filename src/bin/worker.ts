import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Layer } from "effect"
import { WorkerLive } from "../layers/Worker.js"

// The outbox worker: delivers order events; configuration in src/layers/Worker.ts and README.md.
Layer.launch(WorkerLive).pipe(NodeRuntime.runMain({ disablePrettyLogger: true }))
