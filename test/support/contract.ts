/** Validating JSON against the checked-in event contracts (`contracts/*.schema.json`), as a consumer would. */
import { Ajv } from "ajv"
import addFormatsModule from "ajv-formats"
import { readFileSync } from "node:fs"
import { resolve } from "node:path"

const CONTRACTS = resolve(import.meta.dirname, "../../contracts")

/** The text of `contracts/<file>`. */
export const contractText = (file: string) => readFileSync(resolve(CONTRACTS, file), "utf8")

/** A validator for `contracts/<file>` (JSON Schema draft-07, with the uuid and date-time formats). */
export const contractValidator = (file: string) => {
  const ajv = new Ajv({ allErrors: true, strict: true })
  // ajv-formats is CommonJS: under NodeNext its default export arrives as the module object.
  addFormatsModule.default(ajv)
  return ajv.compile(JSON.parse(contractText(file)))
}
