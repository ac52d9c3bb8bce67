import { configDefaults, defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // suites that take a shared service away (a Postgres restart) run alone: vitest.serial.config.ts
    exclude: [...configDefaults.exclude, "test/serial/**"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // end-to-end suites start real processes on free ports; two cores only
    pool: "forks",
    poolOptions: { forks: { maxForks: 2 } }
  }
})
