/** Tests are TypeScript run through ts-jest; helper processes that tests spawn run the
 * compiled JavaScript in dist/ (built by `npm run build`, which `npm test` runs first). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': 'ts-jest' },
  setupFiles: ['<rootDir>/test/setup_env.js'],
  testTimeout: 60000,
  maxWorkers: 2,
};
