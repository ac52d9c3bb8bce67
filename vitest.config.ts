import { configDefaults, defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // suites that take a shared service away (a Postgres restart) run alone: vitest.serial.config.ts
    exclude: [...configDefaults.exclude, "test/serial/**"],
    // on CI a JSON report too, which .ci/run sums into one closing line
    reporters: process.env.CI ? ["default", ["json", { outputFile: "test-results/main.json" }]] : ["default"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // end-to-end suites start real processes on free ports; two cores only
    pool: "forks",
    poolOptions: { forks: { maxForks: 2 } }
  }
})
