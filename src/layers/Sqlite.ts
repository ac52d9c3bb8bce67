import * as Reactivity from "@effect/experimental/Reactivity"
import { SqlClient, Statement } from "@effect/sql"
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import Sqlite from "better-sqlite3"
import { Context, Effect, Either, Layer, Option, Scope, Stream } from "effect"

/**
 * Runs statements on the SQLite connection synchronously: `query(statement)` runs one statement
 * built with the `SqlClient` (its rows for a `SELECT` or `RETURNING`, else `[]`), and a whole
 * `transaction(f)` is one SQLite transaction (nested calls become savepoints).
 */
export interface SqliteQuery {
  readonly query: (statement: Statement.Statement<unknown>) => ReadonlyArray<unknown>
}

/**
 * The SQLite connection behind the `SqlClient`, for the order hot path: a few statements in one
 * synchronous call, instead of an effect per statement (each costs ~30-90 us of CPU in
 * `@effect/sql`, a synchronous better-sqlite3 call ~5-15 us). Present only on SQLite; the
 * repositories fall back to the `SqlClient` on Postgres.
 */
export class SqliteDirect extends Context.Tag("bookverse/SqliteDirect")<
  SqliteDirect,
  {
    /**
     * Runs `f` at once on the connection the `SqlClient` uses: as one transaction
     * (`transaction: true`; a failing statement rolls back the ones before it), or with each
     * statement committing by itself (SQLite's autocommit; the ones before a failure stay). Being
     * one synchronous call, no other fiber's statement runs between them. When a `SqlClient`
     * transaction of another fiber holds the connection, waits for it first; inside the caller's
     * own `SqlClient` transaction, `f` joins it. Fails with `SqlError` when a statement fails.
     */
    readonly run: <A>(f: (sql: SqliteQuery) => A, options: { readonly transaction: boolean }) => Effect.Effect<A, SqlError>
    /**
     * Runs `f` now, as one transaction (`transaction: true`) or with each statement committing by
     * itself, and answers its result or the `SqlError` that stopped it; `undefined`, running
     * nothing, while a `SqlClient` transaction holds the connection (then use `run`, which waits
     * for it or joins it). For callers that want no effect step of their own.
     */
    readonly runNow: <A>(f: (sql: SqliteQuery) => A, options: { readonly transaction: boolean }) => Either.Either<A, SqlError> | undefined
  }
>() {}

/** How many prepared statements a connection keeps (as `@effect/sql-sqlite-node` does by default). */
const PREPARED_STATEMENTS = 200

const isRow = (row: unknown): row is object => typeof row === "object" && row !== null

/** A statement's text with `?` for each parameter, and the parameters' values. */
export type CompiledStatement = readonly [text: string, params: ReadonlyArray<unknown>]

/** A statement's segments as text (a literal's) or `undefined` (a parameter's place). */
type Shape = { readonly parts: ReadonlyArray<string | undefined>; readonly text: string }

/**
 * A compiler for SQLite statements that remembers the text of every statement made only of
 * literal text and parameters (the `sql` template's plain form, most of the hot path's): such a
 * statement's text depends only on its literals, which are a call site's template strings, so
 * it is looked up by them instead of being joined anew (`@effect/sql` compiles each statement
 * object afresh: ~2.5 KB of garbage and a text to hash per statement). Any other statement
 * (identifiers, `sql.in`, `sql.insert`, fragments) is compiled by `@effect/sql` as before. At
 * most `maxShapes` texts are kept.
 */
export const makeStatementCompiler = (maxShapes = 1_000): ((statement: Statement.Statement<unknown>) => CompiledStatement) => {
  // candidates by the statement's first literal
  const shapes = new Map<string, Array<Shape>>()
  let count = 0
  const paramsIfShaped = (shape: Shape, segments: ReadonlyArray<Statement.Segment>): Array<unknown> | undefined => {
    if (segments.length !== shape.parts.length) return undefined
    const params: Array<unknown> = []
    for (let i = 0; i < segments.length; i++) {
      const segment = segments[i]!
      const part = shape.parts[i]
      if (part === undefined) {
        if (segment._tag !== "Parameter") return undefined
        params.push(segment.value)
      } else if (segment._tag !== "Literal" || segment.params !== undefined || segment.value !== part) {
        return undefined
      }
    }
    return params
  }
  const shapeOf = (segments: ReadonlyArray<Statement.Segment>): Array<string | undefined> | undefined => {
    const parts: Array<string | undefined> = []
    for (const segment of segments) {
      if (segment._tag === "Parameter") parts.push(undefined)
      else if (segment._tag === "Literal" && segment.params === undefined) parts.push(segment.value)
      else return undefined
    }
    return parts
  }
  return (statement) => {
    const segments = statement.segments
    const first = segments[0]
    if (first === undefined || first._tag !== "Literal") return statement.compile()
    const candidates = shapes.get(first.value)
    if (candidates !== undefined) {
      for (const shape of candidates) {
        const params = paramsIfShaped(shape, segments)
        if (params !== undefined) return [shape.text, params]
      }
    }
    const compiled = statement.compile()
    const parts = count < maxShapes ? shapeOf(segments) : undefined
    if (parts !== undefined) {
      count++
      if (candidates === undefined) shapes.set(first.value, [{ parts, text: compiled[0] }])
      else candidates.push({ parts, text: compiled[0] })
    }
    return compiled
  }
}

/**
 * A `SqlClient` on one better-sqlite3 connection to `filename` (WAL mode, as
 * `@effect/sql-sqlite-node` opens it; `:memory:` works, since there is only one connection),
 * plus `SqliteDirect` on the same connection. One lock orders them: while a `SqlClient`
 * transaction holds the connection (across its effects), another fiber's statements and
 * `SqliteDirect` calls wait for it; a `SqliteDirect` call, being synchronous, needs no lock beyond
 * that.
 * Up to `PREPARED_STATEMENTS` statements are kept prepared, the least used going first when full
 * (the hot path uses a few dozen; lists of ids of varying length make more).
 */
export const sqliteLayer = (filename: string): Layer.Layer<SqlClient.SqlClient | SqliteDirect, SqlError> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const db = yield* Effect.acquireRelease(
        Effect.try({
          try: () => {
            const opened = new Sqlite(filename)
            opened.pragma("journal_mode = WAL")
            return opened
          },
          catch: (cause) => new SqlError({ cause, message: `could not open the SQLite database ${filename}` })
        }),
        (opened) => Effect.sync(() => opened.close())
      )
      // the statements prepared so far, at most PREPARED_STATEMENTS, evicted by the "clock" rule
      // (an approximation of least recently used): a hit only marks its entry used, so the hot
      // path changes nothing in the map; when full, entries are looked at oldest first, a used
      // one is unmarked and moved to the back, and the first unused one goes
      const prepared = new Map<string, { readonly statement: Sqlite.Statement; used: boolean }>()
      const evictOne = (): void => {
        for (const [text, entry] of prepared) {
          prepared.delete(text)
          if (!entry.used) return
          entry.used = false
          prepared.set(text, entry)
        }
      }
      const prepare = (text: string): Sqlite.Statement => {
        const found = prepared.get(text)
        if (found !== undefined) {
          found.used = true
          return found.statement
        }
        const statement = db.prepare(text)
        if (prepared.size >= PREPARED_STATEMENTS) evictOne()
        prepared.set(text, { statement, used: false })
        return statement
      }
      /** A statement's rows (a `SELECT` or `RETURNING`), or `[]`. */
      const rowsOf = (statement: Sqlite.Statement, params: ReadonlyArray<unknown>): Array<unknown> => {
        if (statement.reader) return statement.all(...params)
        statement.run(...params)
        return []
      }
      const runSync = (text: string, params: ReadonlyArray<unknown>) => rowsOf(prepare(text), params)
      const attempt = <A>(f: () => A, message: string): Effect.Effect<A, SqlError> =>
        Effect.try({ try: f, catch: (cause) => new SqlError({ cause, message }) })

      const connection: Connection = {
        execute: (text, params, transformRows) =>
          attempt(() => {
            const rows = runSync(text, params)
            return transformRows === undefined ? rows : transformRows(rows.filter(isRow))
          }, "Failed to execute statement"),
        executeRaw: (text, params) =>
          attempt(() => {
            const statement = prepare(text)
            return statement.reader ? statement.all(...params) : statement.run(...params)
          }, "Failed to execute statement"),
        executeValues: (text, params) =>
          attempt(() => {
            const statement = prepare(text)
            if (!statement.reader) {
              statement.run(...params)
              return []
            }
            try {
              return statement.raw(true).all(...params).map((row) => (Array.isArray(row) ? row : [row]))
            } finally {
              statement.raw(false)
            }
          }, "Failed to execute statement"),
        executeUnprepared: (text, params, transformRows) =>
          attempt(() => {
            const rows = rowsOf(db.prepare(text), params)
            return transformRows === undefined ? rows : transformRows(rows.filter(isRow))
          }, "Failed to execute statement"),
        executeStream: () => Stream.dieMessage("executeStream is not implemented for SQLite")
      }

      // One lock for the SqlClient's transactions: a statement outside one, and SqliteDirect, wait
      // while another fiber holds it. `heldByTransaction` lets SqliteDirect skip the lock when free.
      const lock = yield* Effect.makeSemaphore(1)
      let heldByTransaction = false
      const transactionAcquirer: Connection.Acquirer = Effect.uninterruptibleMask((restore) =>
        Effect.zipRight(
          restore(lock.take(1)),
          Effect.flatMap(Effect.scope, (scope) =>
            Effect.as(
              Effect.zipRight(
                Effect.sync(() => void (heldByTransaction = true)),
                Scope.addFinalizer(scope, Effect.zipRight(Effect.sync(() => void (heldByTransaction = false)), lock.release(1)))
              ),
              connection
            )
          )
        )
      )
      const client = yield* SqlClient.make({
        // a statement outside a transaction waits while another fiber's transaction holds the
        // connection (or it would run inside it), as @effect/sql-sqlite-node's does
        acquirer: lock.withPermits(1)(Effect.succeed(connection)),
        transactionAcquirer,
        compiler: Statement.makeCompilerSqlite(),
        spanAttributes: [["db.system.name", "sqlite"]]
      })

      const compile = makeStatementCompiler()
      const query: SqliteQuery = {
        query: (statement) => {
          const [text, params] = compile(statement)
          return runSync(text, params)
        }
      }
      // better-sqlite3 makes a nested call a savepoint of the transaction already open
      const transactionOf = db.transaction((body: () => void) => body())
      const inTransactionSync = <A>(f: (sql: SqliteQuery) => A): A => {
        const out: { result?: [A] } = {}
        transactionOf(() => void (out.result = [f(query)]))
        if (out.result === undefined) throw new Error("the transaction ended without a result")
        return out.result[0]
      }
      /** `f` on the connection now, as one transaction or statement by statement, or the error that stopped it. */
      const runSyncNow = <A>(f: (sql: SqliteQuery) => A, transaction: boolean): Either.Either<A, SqlError> => {
        try {
          return Either.right(transaction ? inTransactionSync(f) : f(query))
        } catch (cause) {
          return Either.left(new SqlError({ cause, message: transaction ? "Failed to run a transaction" : "Failed to execute statements" }))
        }
      }
      const direct = SqliteDirect.of({
        // one effect step when no SqlClient transaction holds the connection; decided when the
        // effect runs, not when it is built (it may be built early, or re-run)
        run: (f, { transaction }) =>
          Effect.suspend(() => {
            if (!heldByTransaction) return runSyncNow(f, transaction)
            const now = Effect.suspend(() => runSyncNow(f, transaction))
            return Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (own) =>
              // inside its own SqlClient transaction the caller holds the lock: join it
              Option.isSome(own) ? now : lock.withPermits(1)(now)
            )
          }),
        runNow: (f, options) => (heldByTransaction ? undefined : runSyncNow(f, options.transaction))
      })
      return Context.make(SqlClient.SqlClient, client).pipe(Context.add(SqliteDirect, direct))
    })
  ).pipe(Layer.provide(Reactivity.layer))
