import { SqliteClient } from "@effect/sql-sqlite-node"
import { Config, ConfigError, Effect, Either, Layer } from "effect"
import type { SqlClient } from "@effect/sql"
import { migrate } from "./Migrations.js"

/** Where the database is, from `DATABASE_URL`. */
export type DatabaseLocation = { readonly _tag: "Sqlite"; readonly filename: string }

/**
 * Parses `DATABASE_URL`: `sqlite:///./checkout.db` (a relative file), `sqlite:////var/db/x.db`
 * (absolute), `sqlite:///:memory:` (in memory) or a plain file path. Left with a message otherwise.
 */
export const parseDatabaseUrl = (url: string): Either.Either<DatabaseLocation, string> => {
  const trimmed = url.trim()
  if (trimmed === "") return Either.left("must not be empty")
  if (trimmed.startsWith("sqlite:")) {
    const rest = trimmed.slice("sqlite:".length).replace(/^\/\/\//, "").replace(/^\/\//, "")
    if (rest === "") return Either.left("names no file (try sqlite:///./checkout.db)")
    return Either.right({ _tag: "Sqlite", filename: rest })
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) {
    return Either.left(`scheme of ${trimmed.split(":")[0]} is not supported (use sqlite:///path or a file path)`)
  }
  return Either.right({ _tag: "Sqlite", filename: trimmed })
}

/** `DATABASE_URL` (default `sqlite:///./checkout.db`), parsed. */
export const DatabaseUrl: Config.Config<DatabaseLocation> = Config.string("DATABASE_URL").pipe(
  Config.withDefault("sqlite:///./checkout.db"),
  Config.mapOrFail((url) =>
    Either.mapLeft(parseDatabaseUrl(url), (message) => ConfigError.InvalidData([], message))
  )
)

/** A `SqlClient` for a location: SQLite in WAL mode. */
export const sqlClientLayer = (location: DatabaseLocation): Layer.Layer<SqlClient.SqlClient, ConfigError.ConfigError> =>
  SqliteClient.layer({ filename: location.filename })

/** Runs the migrations once the client is up; start-up fails if they fail. */
export const MigrationsLive: Layer.Layer<never, never, SqlClient.SqlClient> = Layer.effectDiscard(
  migrate.pipe(
    Effect.tap((applied) =>
      applied.length > 0 ? Effect.logInfo("database migrated").pipe(Effect.annotateLogs("applied", applied.map(([, n]) => n))) : Effect.void
    ),
    Effect.orDie
  )
)

/**
 * The database from `DATABASE_URL`, migrated when `migrateOnStart` is true.
 * Fails with a `ConfigError` naming `DATABASE_URL` when it cannot be parsed.
 */
export const DatabaseLive = (options: { readonly migrateOnStart: boolean }) =>
  Layer.unwrapEffect(
    Effect.map(DatabaseUrl, (location) => {
      const client = sqlClientLayer(location)
      return options.migrateOnStart ? Layer.provideMerge(MigrationsLive, client) : client
    })
  )

/** An in-memory SQLite database, migrated: for tests. */
export const InMemoryDatabase: Layer.Layer<SqlClient.SqlClient> = Layer.provideMerge(
  MigrationsLive,
  SqliteClient.layer({ filename: ":memory:" })
).pipe(Layer.orDie)
