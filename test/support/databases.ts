/**
 * The databases the repository and saga tests run against: SQLite (in memory) always, and
 * Postgres when `TEST_DATABASE_URL` is set (`.ci/run` sets it to the local server). Each Postgres
 * test gets a fresh schema, dropped afterwards, so runs and tests never see each other's rows.
 */
import type { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { InMemoryDatabase, MigrationsLive } from "../../src/layers/Database.js"

/** The Postgres server for tests, if any. */
export const testPostgresUrl: string | undefined = process.env.TEST_DATABASE_URL

/** `url` with its connections' `search_path` set to `schema`. */
export const withSearchPath = (url: string, schema: string) => {
  const u = new URL(url)
  u.searchParams.set("options", `-c search_path=${schema}`)
  return u.toString()
}

/** Creates a fresh schema on the test server and returns its name and a URL that uses it. */
export const createTestSchema = (url: string) =>
  Effect.gen(function* () {
    const schema = `t_${randomBytes(6).toString("hex")}`
    yield* Effect.flatMap(PgClient.PgClient, (sql) => sql.unsafe(`CREATE SCHEMA ${schema}`)).pipe(
      Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 }))
    )
    return { schema, url: withSearchPath(url, schema) }
  }).pipe(Effect.orDie)

/** Drops a schema made by `createTestSchema`. */
export const dropTestSchema = (url: string, schema: string) =>
  Effect.flatMap(PgClient.PgClient, (sql) => sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)).pipe(
    Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 })),
    Effect.orDie
  )

/** A migrated Postgres database in a fresh schema, dropped when the layer is released. */
export const postgresTestDatabase = (url: string): Layer.Layer<SqlClient.SqlClient> =>
  Layer.unwrapScoped(
    Effect.gen(function* () {
      const made = yield* Effect.acquireRelease(createTestSchema(url), ({ schema }) => dropTestSchema(url, schema))
      return Layer.provideMerge(MigrationsLive, PgClient.layer({ url: Redacted.make(made.url), maxConnections: 4 }))
    })
  ).pipe(Layer.orDie)

/** Every database to run the suite against, by name. */
export const testDatabases: ReadonlyArray<{ readonly name: string; readonly layer: () => Layer.Layer<SqlClient.SqlClient> }> = [
  { name: "sqlite", layer: () => InMemoryDatabase },
  ...(testPostgresUrl === undefined ? [] : [{ name: "postgres", layer: () => postgresTestDatabase(testPostgresUrl) }])
]
