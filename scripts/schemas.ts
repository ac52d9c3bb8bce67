/**
 * Writes the event contracts: `contracts/<type>.schema.json`, JSON Schema (draft-07) derived from
 * the event Schemas in `src/domain/Events.ts`. `test/unit/outbox-contract.test.ts` fails when a
 * checked-in file differs from what this writes.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { eventContracts, renderContract } from "../src/domain/Events.js"

const dir = new URL("../contracts", import.meta.url).pathname
mkdirSync(dir, { recursive: true })
for (const { file, schema } of eventContracts) {
  writeFileSync(join(dir, file), renderContract(schema))
  process.stdout.write(`wrote contracts/${file}\n`)
}
