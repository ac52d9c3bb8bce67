import { Effect, Layer } from "effect"
import { DatabaseUrl, sqlClientLayer } from "./Database.js"
import { LoggingLive } from "./Logging.js"
import { migrate } from "./Migrations.js"

/**
 * Applies every pending migration to the database at `DATABASE_URL` and logs which ones it
 * applied (none when the database is up to date). Fails with the `ConfigError`, `MigrationError`
 * or `SqlError` that stopped it, so the process exits non-zero.
 */
export const MigrateJob = migrate.pipe(
  Effect.tap((applied) =>
    Effect.logInfo(applied.length > 0 ? "database migrated" : "database already up to date").pipe(
      Effect.annotateLogs("applied", applied.map(([id, name]) => `${String(id).padStart(4, "0")}_${name}`))
    )
  ),
  Effect.provide(Layer.unwrapEffect(Effect.map(DatabaseUrl, sqlClientLayer))),
  Effect.provide(LoggingLive)
)
