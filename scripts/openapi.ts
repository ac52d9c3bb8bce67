/**
 * Writes the OpenAPI document derived from the HttpApi (`src/http/Api.ts`) to `openapi.json` at
 * the repository root (or to the path given as the first argument).
 */
import { OpenApi } from "@effect/platform"
import { writeFileSync } from "node:fs"
import { resolve } from "node:path"
import { CheckoutApi } from "../src/http/Api.js"

const target = resolve(process.argv[2] ?? "openapi.json")
writeFileSync(target, `${JSON.stringify(OpenApi.fromApi(CheckoutApi), null, 2)}\n`)
process.stdout.write(`wrote ${target}\n`)
