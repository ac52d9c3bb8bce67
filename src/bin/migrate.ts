import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { MigrateJob } from "../layers/MigrateJob.js"

// The migrations job (a deployment's init step): applies pending migrations to DATABASE_URL, exits 0.
NodeRuntime.runMain(MigrateJob, { disablePrettyLogger: true })
