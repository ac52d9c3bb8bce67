import { SqlClient } from "@effect/sql"
import { describe, expect, it, vi } from "@effect/vitest"
import { Cause, Chunk, Context, Deferred, Effect, Either, Exit, Fiber, Layer } from "effect"
import { SqlError } from "@effect/sql/SqlError"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { makeStatementCompiler, SqliteDirect, sqliteLayer } from "../../src/layers/Sqlite.js"
import { makeSqlRunner, type SqlSteps } from "../../src/services/SqlSteps.js"

const database = Layer.effectDiscard(
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)`)
).pipe(Layer.provideMerge(sqliteLayer(":memory:")), Layer.orDie)

const values = Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ v: string }>`SELECT v FROM t ORDER BY id`).pipe(
  Effect.map((rows) => rows.map((r) => r.v))
)

/**
 * Runs `effect` in its own fiber while another fiber's SqlClient transaction is open (it has
 * written a row, and waits across an async boundary), checks that `effect` is still waiting for the
 * connection, then lets that transaction roll back; returns what `effect` ended with.
 */
const whileAnotherTransactionIsOpen = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const inside = yield* Deferred.make<void>()
    const finish = yield* Deferred.make<void>()
    const holder = yield* sql
      .withTransaction(
        Effect.gen(function* () {
          yield* sql`INSERT INTO t (v) VALUES (${"rolled back"})`
          yield* Deferred.succeed(inside, undefined)
          yield* Deferred.await(finish)
          return yield* Effect.fail("roll back")
        })
      )
      .pipe(Effect.either, Effect.fork)
    yield* Deferred.await(inside)
    const other = yield* Effect.fork(effect)
    yield* Effect.yieldNow()
    expect(other.unsafePoll()).toBeNull() // still waiting for the connection
    yield* Deferred.succeed(finish, undefined)
    yield* Fiber.join(holder)
    return yield* Fiber.join(other)
  })

describe("SqliteDirect (the synchronous path on the SqlClient's connection)", () => {
  it.effect("runs its statements as one transaction: a failing statement rolls back the ones before it", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const direct = yield* SqliteDirect
      yield* direct.run((db) => db.query(sql`INSERT INTO t (v) VALUES (${"a"})`), { transaction: true })
      const failed = yield* Effect.either(
        direct.run((db) => {
          db.query(sql`INSERT INTO t (v) VALUES (${"b"})`)
          db.query(sql`INSERT INTO t (v) VALUES (${null})`) // NOT NULL
        }, { transaction: true })
      )
      expect(Either.isLeft(failed) && failed.left._tag).toBe("SqlError")
      expect(yield* values).toEqual(["a"])
    }).pipe(Effect.provide(database)))

  it.effect("600 distinct statements (three times the prepared-statement cache) between uses of a hot one all answer right", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const direct = yield* SqliteDirect
      yield* direct.run((db) => db.query(sql`INSERT INTO t (v) VALUES (${"hot"})`), { transaction: true })
      for (let i = 1; i <= 600; i++) {
        // IN lists of every length up to 600: each a statement text of its own
        const ids = Array.from({ length: i }, (_, j) => j + 1)
        const [listed, hot] = yield* direct.run((db) => [
          db.query(sql`SELECT v FROM t WHERE ${sql.in("id", ids)}`),
          db.query(sql`SELECT v FROM t WHERE id = ${1}`)
        ], { transaction: true })
        expect([listed, hot]).toEqual([[{ v: "hot" }], [{ v: "hot" }]])
      }
    }).pipe(Effect.provide(database)))

  it.effect("run without a transaction: each statement commits by itself, so a failing one leaves those before it", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const direct = yield* SqliteDirect
      const failed = yield* Effect.either(
        direct.run((db) => {
          db.query(sql`INSERT INTO t (v) VALUES (${"a"})`)
          db.query(sql`INSERT INTO t (v) VALUES (${null})`) // NOT NULL
        }, { transaction: false })
      )
      expect(Either.isLeft(failed) && failed.left._tag).toBe("SqlError")
      expect(yield* values).toEqual(["a"])
    }).pipe(Effect.provide(database)))

  it.effect("run without a transaction also waits while another fiber's SqlClient transaction holds the connection", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const direct = yield* SqliteDirect
      yield* whileAnotherTransactionIsOpen(direct.run((db) => db.query(sql`INSERT INTO t (v) VALUES (${"kept"})`), { transaction: false }))
      expect(yield* values).toEqual(["kept"])
    }).pipe(Effect.provide(database)))

  it.effect("waits while another fiber's SqlClient transaction holds the connection, instead of joining it", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const direct = yield* SqliteDirect
      yield* whileAnotherTransactionIsOpen(direct.run((db) => db.query(sql`INSERT INTO t (v) VALUES (${"kept"})`), { transaction: true }))
      expect(yield* values).toEqual(["kept"])
    }).pipe(Effect.provide(database)))

  it.effect("a plain SqlClient statement of another fiber waits for an open transaction instead of running inside it", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const seen = yield* whileAnotherTransactionIsOpen(
        Effect.zipRight(sql`INSERT INTO t (v) VALUES (${"other fiber"})`, sql<{ v: string }>`SELECT v FROM t ORDER BY id`)
      )
      // it saw no uncommitted row, and its write outlived the other transaction's rollback
      expect(seen).toEqual([{ v: "other fiber" }])
      expect(yield* values).toEqual(["other fiber"])
    }).pipe(Effect.provide(database)))

  it.effect("a SqliteDirect effect built before another fiber's transaction began still waits for it when run", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const direct = yield* SqliteDirect
      // built now, while no transaction is open; run while one is
      const write = direct.run((db) => db.query(sql`INSERT INTO t (v) VALUES (${"kept"})`), { transaction: true })
      yield* whileAnotherTransactionIsOpen(write)
      expect(yield* values).toEqual(["kept"])
    }).pipe(Effect.provide(database)))

  it.effect("inside the caller's own SqlClient transaction, joins it (and is rolled back with it)", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const direct = yield* SqliteDirect
      const outcome = yield* sql
        .withTransaction(
          Effect.gen(function* () {
            yield* direct.run((db) => db.query(sql`INSERT INTO t (v) VALUES (${"joined"})`), { transaction: true })
            expect(yield* values).toEqual(["joined"])
            return yield* Effect.fail("roll back")
          })
        )
        .pipe(Effect.either)
      expect(Either.isLeft(outcome)).toBe(true)
      expect(yield* values).toEqual([])
    }).pipe(Effect.provide(database)))

  it.effect("a file database: SqlClient and SqliteDirect see each other's writes at once", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "checkout-sqlite-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const check = Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const direct = yield* SqliteDirect
        yield* sql`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)`
        yield* direct.run((db) => db.query(sql`INSERT INTO t (v) VALUES (${"direct"})`), { transaction: true })
        yield* sql`INSERT INTO t (v) VALUES (${"client"})`
        const seen = yield* direct.run((db) => db.query(sql`SELECT v FROM t ORDER BY id`), { transaction: true })
        expect(seen).toEqual([{ v: "direct" }, { v: "client" }])
        const mode = yield* sql<{ journal_mode: string }>`PRAGMA journal_mode`
        expect(mode).toEqual([{ journal_mode: "wal" }])
      })
      yield* Effect.provide(check, sqliteLayer(join(dir, "checkout.db")))
    }).pipe(Effect.scoped))
})

/** Whether the run died with a `SqlError`, as a database failure does (the api answers it 503). */
const sqlErrorDefect = (exit: Exit.Exit<unknown>): boolean =>
  Exit.isFailure(exit) && Cause.failures(exit.cause).length === 0 && Chunk.some(Cause.defects(exit.cause), (d) => d instanceof SqlError)

describe("SqlSteps", () => {
  const twoInserts = (sql: SqlClient.SqlClient, second: string | null) =>
    function* (): SqlSteps<number> {
      yield sql`INSERT INTO t (v) VALUES (${"first"})`
      yield sql`INSERT INTO t (v) VALUES (${second})`
      const rows = yield sql`SELECT v FROM t`
      return rows.length
    }

  it.effect("on SQLite: the steps' rows come back; as a transaction a failure rolls back the whole run, without one the statement before it stays", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const runner = yield* makeSqlRunner
      expect(yield* runner.run(twoInserts(sql, "second"), { transaction: true })).toBe(2)
      const failed = yield* Effect.exit(runner.run(twoInserts(sql, null), { transaction: true }))
      expect(sqlErrorDefect(failed)).toBe(true)
      expect(yield* values).toEqual(["first", "second"])
      // as on Postgres: without a transaction each statement commits by itself
      expect(yield* runner.run(twoInserts(sql, "fourth"))).toBe(4)
      const failedAlone = yield* Effect.exit(runner.run(twoInserts(sql, null)))
      expect(sqlErrorDefect(failedAlone)).toBe(true)
      expect(yield* values).toEqual(["first", "second", "first", "fourth", "first"])
    }).pipe(Effect.provide(database)))

  it.effect("on SQLite: a run waits for another fiber's open SqlClient transaction, and joins the caller's own", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const runner = yield* makeSqlRunner
      const insert = (v: string) => runner.run(function* (): SqlSteps<void> {
        yield sql`INSERT INTO t (v) VALUES (${v})`
      })
      yield* whileAnotherTransactionIsOpen(insert("after the other"))
      expect(yield* values).toEqual(["after the other"])
      const outcome = yield* sql.withTransaction(Effect.zipRight(insert("joined"), Effect.fail("roll back"))).pipe(Effect.either)
      expect(Either.isLeft(outcome)).toBe(true)
      expect(yield* values).toEqual(["after the other"])
    }).pipe(Effect.provide(database)))

  it.effect("without SqliteDirect (the Postgres way): statements are effects, one transaction when asked", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      // the same SqlClient with nothing else in context: the runner falls back to effects
      const runner = yield* Effect.mapInputContext(makeSqlRunner, (_: Context.Context<never>) => Context.make(SqlClient.SqlClient, sql))
      expect(yield* runner.run(twoInserts(sql, "second"), { transaction: true })).toBe(2)
      const failed = yield* Effect.exit(runner.run(twoInserts(sql, null), { transaction: true }))
      expect(sqlErrorDefect(failed)).toBe(true)
      expect(yield* values).toEqual(["first", "second"])
      // without a transaction, the statement before the failure stays
      expect(sqlErrorDefect(yield* Effect.exit(runner.run(twoInserts(sql, null))))).toBe(true)
      expect(yield* values).toEqual(["first", "second", "first"])
    }).pipe(Effect.provide(database)))
})

describe("makeStatementCompiler (statement texts remembered by shape)", () => {
  it.effect("answers what @effect/sql compiles, for plain statements (remembered) and any other (compiled anew)", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const compile = makeStatementCompiler()
      const byId = (id: number, v: string) => sql`UPDATE t SET v = ${v} WHERE id = ${id}`
      const byIdAndValue = (id: number, v: string) => sql`UPDATE t SET v = ${v} WHERE id = ${id} AND v = ${v}`
      const statements = [
        byId(1, "a"),
        byId(2, "b"),
        // the same first literal, another shape
        byIdAndValue(3, "c"),
        byId(4, "d"),
        byIdAndValue(5, "e"),
        sql`SELECT v FROM t WHERE ${sql.in("id", [1, 2, 3])}`,
        sql`SELECT v FROM t WHERE ${sql.in("id", [1, 2])}`,
        sql`INSERT INTO t ${sql.insert([{ v: "f" }, { v: "g" }])}`,
        sql`${sql.literal("SELECT 1")} WHERE ${1} = ${1}`,
        sql`SELECT v FROM t`,
        // the same first literal and length as byId, another literal after it
        sql`UPDATE t SET v = ${"i"} WHERE rowid = ${7}`,
        // a known shape with one more parameter at its end
        sql`UPDATE t SET v = ${"j"} WHERE id = ${8}${""}`
      ]
      for (const statement of statements) expect(compile(statement)).toEqual(statement.compile())
      // a plain statement of a known shape is not compiled again
      const again = byIdAndValue(6, "h")
      const spy = vi.spyOn(again, "compile")
      expect(compile(again)).toEqual(["UPDATE t SET v = ? WHERE id = ? AND v = ?", ["h", 6, "h"]])
      expect(spy).not.toHaveBeenCalled()
      // with no room for shapes, every statement is compiled, and answers the same
      const none = makeStatementCompiler(0)
      for (const statement of statements) expect(none(statement)).toEqual(statement.compile())
    }).pipe(Effect.provide(database)))
})
