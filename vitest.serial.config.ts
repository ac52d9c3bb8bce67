import { defineConfig } from "vitest/config"

// Suites that disturb shared services (they restart Postgres): one file at a time, after the rest.
export default defineConfig({
  test: {
    include: ["test/serial/**/*.test.ts"],
    reporters: process.env.CI ? ["default", ["json", { outputFile: "test-results/serial.json" }]] : ["default"],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    passWithNoTests: true
  }
})
