import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { apiNodeFlags } from "../../bench/lib/processes.js"

describe("the api's node flags", () => {
  it("the bench runs the api with the flags the Dockerfile's CMD gives it", () => {
    const dockerfile = readFileSync(join(import.meta.dirname, "..", "..", "Dockerfile"), "utf8")
    const cmd = dockerfile.split("\n").filter((line) => line.startsWith("CMD ")).at(-1)
    expect(cmd).toBeDefined()
    const argv: unknown = JSON.parse((cmd ?? "").slice("CMD ".length))
    expect(argv).toEqual(["node", ...apiNodeFlags, "dist/src/bin/api.js"])
    expect(apiNodeFlags).toContain("--max-old-space-size=128")
  })
})
