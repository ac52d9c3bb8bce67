/**
 * The databases the end-to-end suites run the api against: a SQLite file always, and Postgres (a
 * fresh schema, dropped afterwards) when `TEST_DATABASE_URL` is set.
 */
import { Effect } from "effect"
import { join } from "node:path"
import { createTestSchema, dropTestSchema, testPostgresUrl } from "../support/databases.js"

/** A database for one suite: the api's `DATABASE_URL` and how to remove it. */
export interface E2eDatabase {
  readonly url: string
  readonly drop: () => Promise<void>
}

/** Each database kind with a maker (`dir`: the suite's temporary folder, for SQLite files). */
export const e2eDatabases: ReadonlyArray<{ readonly name: string; readonly make: (dir: string) => Promise<E2eDatabase> }> = [
  { name: "sqlite", make: async (dir) => ({ url: `sqlite:///${join(dir, "checkout.db")}`, drop: async () => {} }) },
  ...postgres(testPostgresUrl)
]

function postgres(base: string | undefined) {
  if (base === undefined) return []
  return [
    {
      name: "postgres",
      make: async (): Promise<E2eDatabase> => {
        const made = await Effect.runPromise(createTestSchema(base))
        return { url: made.url, drop: () => Effect.runPromise(Effect.asVoid(dropTestSchema(base, made.schema))) }
      }
    }
  ]
}
