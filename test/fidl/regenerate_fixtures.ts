// Writes test/fidl/gen/test_kitchen.ts, generated from the hand-built kitchen-sink IR fixture
// (a test-only library with the shapes the real ones lack). src/gen itself comes from
// `npm run codegen` (front end + back end), not from here.
// Run: npx tsc -p . && node dist/test/fidl/regenerate_fixtures.js
import * as fs from 'fs';
import * as path from 'path';
import { generateTypeScript } from '../../codegen/backend';
import { kitchenSinkFixture, pagerFixture, runnerFixture, zxFixture } from './ir_fixture';

export function kitchenModule(): string {
  const [, , , kitchen] = generateTypeScript([zxFixture(), runnerFixture(), pagerFixture(), kitchenSinkFixture()], {
    runtimeImport: '../../../src/fidl',
    libraryImportPrefix: '../../../src/gen/',
  });
  return kitchen.content;
}

if (require.main === module) {
  const repo = path.resolve(__dirname, '..', '..', '..');
  fs.writeFileSync(path.join(repo, 'test/fidl/gen/test_kitchen.ts'), kitchenModule());
}
