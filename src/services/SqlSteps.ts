import { SqlClient, type Statement } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Either, Option } from "effect"
import { SqliteDirect, type SqliteQuery } from "../layers/Sqlite.js"

/**
 * Database work written once for every driver: a generator that yields the statements it runs
 * (built with the `SqlClient`) and gets each one's rows back (`[]` unless it is a `SELECT` or
 * has `RETURNING`). It may branch on the rows and `yield*` other steps. It must do nothing else
 * that has effects: on SQLite it runs in one synchronous call.
 */
export type SqlSteps<A> = Generator<Statement.Statement<unknown>, A, ReadonlyArray<unknown>>

/** How `SqlSteps` are run on the database in context. */
export interface SqlRunner {
  /**
   * Runs `steps`, as one transaction when `transaction` is true, else each statement on its own
   * (autocommit). On SQLite (`SqliteDirect` in context) they run in one synchronous call, so no
   * other fiber's statement comes between them: ~5-15 us a statement instead of ~30-90 us, and one
   * effect step for the whole run. Elsewhere (Postgres) each statement is an effect of the
   * `SqlClient`, inside one `withTransaction` when `transaction` is true. A database failure is a
   * defect: the run dies with the `SqlError` (which the api answers 503, `isDatabaseOutage`).
   */
  readonly run: <A>(steps: () => SqlSteps<A>, options?: { readonly transaction?: boolean }) => Effect.Effect<A>
}

/** The runner on the `SqlClient` in context, and on `SqliteDirect` when that is there too. */
export const makeSqlRunner: Effect.Effect<SqlRunner, never, SqlClient.SqlClient> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const direct = yield* Effect.serviceOption(SqliteDirect)
  if (Option.isSome(direct)) {
    const { run, runNow } = direct.value
    const runAll = <A>(steps: () => SqlSteps<A>) => (db: SqliteQuery): A => {
      const iterator = steps()
      let step = iterator.next()
      while (step.done !== true) step = iterator.next(db.query(step.value))
      return step.value
    }
    return {
      // without `transaction`, each statement autocommits: a run of one statement needs no BEGIN and
      // COMMIT around it; with it, the whole run is one transaction
      run: (steps, options) =>
        Effect.suspend(() => {
          const mode = { transaction: options?.transaction === true }
          const now = runNow(runAll(steps), mode)
          if (now === undefined) return Effect.orDie(run(runAll(steps), mode))
          return Either.isRight(now) ? Effect.succeed(now.right) : Effect.die(now.left)
        })
    }
  }
  const runEffects = <A>(steps: () => SqlSteps<A>): Effect.Effect<A, SqlError> =>
    Effect.suspend(() => {
      const iterator = steps()
      const next = (step: IteratorResult<Statement.Statement<unknown>, A>): Effect.Effect<A, SqlError> =>
        step.done === true ? Effect.succeed(step.value) : Effect.flatMap(step.value, (rows) => next(iterator.next(rows)))
      return next(iterator.next())
    })
  return {
    run: (steps, options) => Effect.orDie(options?.transaction === true ? sql.withTransaction(runEffects(steps)) : runEffects(steps))
  }
})
