/**
 * The fake inventory's start-up settings from the environment, read with Effect `Config`. A bad
 * value stops start-up with a message naming the variable.
 *
 * | variable | meaning |
 * | --- | --- |
 * | FAKE_INVENTORY_SEED | path of a JSON seed file `[{"bookId","title","price","quantity"}]`; default: demo catalog |
 * | FAKE_INVENTORY_FAULTS | `1`/`true` enables fault injection and the admin routes |
 * | FAKE_INVENTORY_FAULT_RULES | JSON array of fault rules installed at start-up (needs FAKE_INVENTORY_FAULTS) |
 * | FAKE_INVENTORY_REQUIRE_TOKEN | when set, adjusts need `Authorization: Bearer <value>` |
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { Config, ConfigError, Data, Effect, Either, Option, Redacted, Schema } from "effect"
import { SeedFile } from "./Catalog.js"
import { FaultRules } from "./Faults.js"
import type { FakeInventoryOptions } from "./Server.js"
import { describeParseError } from "./Validation.js"

/** Start-up failed because a setting could not be used; `message` names the variable. */
export class FakeInventoryConfigError extends Data.TaggedError("FakeInventoryConfigError")<{
  readonly message: string
}> {}

const faultRules = Config.string("FAKE_INVENTORY_FAULT_RULES").pipe(
  Config.mapOrFail((text) =>
    Either.mapLeft(
      Schema.decodeUnknownEither(FaultRules)(text),
      (error) => ConfigError.InvalidData([], `not a JSON array of fault rules: ${describeParseError(error)}`)
    )
  ),
  Config.option
)

/**
 * Reads the FAKE_INVENTORY_* variables (table above) into {@link FakeInventoryOptions} (without
 * port and host, which the entry point reads). Reads the seed file through `FileSystem`.
 */
export const fakeInventoryOptionsFromEnv: Effect.Effect<
  FakeInventoryOptions,
  ConfigError.ConfigError | FakeInventoryConfigError,
  FileSystem.FileSystem
> = Effect.gen(function*() {
  const enabled = yield* Config.boolean("FAKE_INVENTORY_FAULTS").pipe(Config.withDefault(false))
  const rules = yield* faultRules
  const token = yield* Config.option(Config.redacted("FAKE_INVENTORY_REQUIRE_TOKEN"))
  const seedPath = yield* Config.option(Config.string("FAKE_INVENTORY_SEED"))
  if (Option.isSome(rules) && !enabled) {
    return yield* new FakeInventoryConfigError({
      message: "FAKE_INVENTORY_FAULT_RULES is set but FAKE_INVENTORY_FAULTS is not 1: faults are off"
    })
  }
  let seed: FakeInventoryOptions["seed"]
  if (Option.isSome(seedPath)) {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(seedPath.value).pipe(
      Effect.mapError((error) =>
        new FakeInventoryConfigError({ message: `FAKE_INVENTORY_SEED: cannot read ${seedPath.value}: ${error.message}` })
      )
    )
    seed = yield* Schema.decodeUnknown(SeedFile)(text).pipe(
      Effect.mapError((error) =>
        new FakeInventoryConfigError({ message: `FAKE_INVENTORY_SEED: ${seedPath.value} is not a seed file: ${describeParseError(error)}` })
      )
    )
  }
  return {
    ...(seed === undefined ? {} : { seed }),
    faults: enabled ? { rules: Option.getOrElse(rules, () => []) } : false,
    requireToken: Option.getOrUndefined(Option.map(token, Redacted.value))
  }
})
