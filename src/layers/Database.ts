import type { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Config, ConfigError, Effect, Either, Layer, Redacted } from "effect"
import { migrate } from "./Migrations.js"
import { sqliteLayer } from "./Sqlite.js"

/** Where the database is, from `DATABASE_URL`. */
export type DatabaseLocation =
  | { readonly _tag: "Sqlite"; readonly filename: string }
  | { readonly _tag: "Postgres"; readonly url: Redacted.Redacted<string> }

/**
 * Parses `DATABASE_URL`: `postgres://…` or `postgresql://…` (Postgres); `sqlite:///./checkout.db`
 * (a relative file), `sqlite:////var/db/x.db` (absolute), `sqlite:///:memory:` (in memory) or a
 * plain file path (SQLite). Left with a message otherwise.
 */
export const parseDatabaseUrl = (url: string): Either.Either<DatabaseLocation, string> => {
  const trimmed = url.trim()
  if (trimmed === "") return Either.left("must not be empty")
  if (/^postgres(ql)?:\/\//i.test(trimmed)) return Either.right({ _tag: "Postgres", url: Redacted.make(trimmed) })
  if (trimmed.startsWith("sqlite:")) {
    const rest = trimmed.slice("sqlite:".length).replace(/^\/\/\//, "").replace(/^\/\//, "")
    if (rest === "") return Either.left("names no file (try sqlite:///./checkout.db)")
    return Either.right({ _tag: "Sqlite", filename: rest })
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) {
    return Either.left(
      `scheme ${trimmed.split(":")[0]} is not supported (use postgres://…, sqlite:///path or a file path)`
    )
  }
  return Either.right({ _tag: "Sqlite", filename: trimmed })
}

/** `DATABASE_URL` (default `sqlite:///./checkout.db`), parsed; the URL is a secret (it may hold a password). */
export const DatabaseUrl: Config.Config<DatabaseLocation> = Config.string("DATABASE_URL").pipe(
  // parsed at once; a Postgres URL is kept only as a Redacted value
  Config.mapOrFail((url) => Either.mapLeft(parseDatabaseUrl(url), (message) => ConfigError.InvalidData([], message))),
  Config.withDefault<DatabaseLocation>({ _tag: "Sqlite", filename: "./checkout.db" })
)

/** `DATABASE_POOL_SIZE` (10): Postgres connections per process. */
export const DatabasePoolSize = Config.integer("DATABASE_POOL_SIZE").pipe(
  Config.validate({ message: "must be an integer from 1 to 1000", validation: (n) => n >= 1 && n <= 1000 }),
  Config.withDefault(10)
)

/**
 * One `SqlClient` for a location: SQLite in WAL mode (with `SqliteDirect` on the same connection,
 * for the order hot path), or a Postgres pool of `poolSize` connections. Fails with `SqlError`
 * when Postgres cannot be reached at start-up or the SQLite file cannot be opened.
 */
export const sqlClientLayer = (
  location: DatabaseLocation,
  poolSize = 10
): Layer.Layer<SqlClient.SqlClient, ConfigError.ConfigError | SqlError> =>
  location._tag === "Postgres"
    ? // the Postgres driver is loaded only when it is used
      Layer.unwrapEffect(
        Effect.promise(() => import("@effect/sql-pg")).pipe(
          Effect.map(({ PgClient }) =>
            PgClient.layer({
              url: location.url,
              maxConnections: poolSize,
              applicationName: "bookverse-checkout",
              connectTimeout: "5 seconds"
            })
          )
        )
      )
    : sqliteLayer(location.filename)

/** Runs the migrations once the client is up; start-up fails if they fail. */
export const MigrationsLive: Layer.Layer<never, never, SqlClient.SqlClient> = Layer.effectDiscard(
  migrate.pipe(
    Effect.tap((applied) =>
      applied.length > 0
        ? Effect.logInfo("database migrated").pipe(Effect.annotateLogs("applied", applied.map(([, n]) => n)))
        : Effect.void
    ),
    Effect.orDie
  )
)

/**
 * The database from `DATABASE_URL` (and `DATABASE_POOL_SIZE`), migrated when `migrateOnStart`.
 * Fails with a `ConfigError` naming the variable, or a `SqlError` when Postgres is unreachable.
 */
export const DatabaseLive = (options: { readonly migrateOnStart: boolean }) =>
  Layer.unwrapEffect(
    Effect.map(Config.all({ location: DatabaseUrl, poolSize: DatabasePoolSize }), ({ location, poolSize }) => {
      const client = sqlClientLayer(location, poolSize)
      return options.migrateOnStart ? Layer.provideMerge(MigrationsLive, client) : client
    })
  )

/** An in-memory SQLite database, migrated: for tests. */
export const InMemoryDatabase: Layer.Layer<SqlClient.SqlClient> = Layer.provideMerge(
  MigrationsLive,
  sqliteLayer(":memory:")
).pipe(Layer.orDie)
