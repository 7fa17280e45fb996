import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Two cores: a few files at a time keeps timing-sensitive multi-process tests honest.
    maxWorkers: 2,
  },
})
