import { Schema } from "effect"

/**
 * An integer column as the drivers return it: a number from SQLite, a string from Postgres
 * (BIGINT and COUNT(*) come back as text so as not to lose precision). Decodes to a number.
 */
export const DbInt = Schema.Union(Schema.Int, Schema.NumberFromString.pipe(Schema.int()))
