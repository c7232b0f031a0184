// Writes the modules generated from the hand-built IR fixtures:
//   src/gen/{zx,fuchsia_starnix_runner,starnix_pager}.ts  (only with --src: until the front end
//       compiles fidl/*.fidl, these are the checked-in bindings)
//   test/fidl/gen/test_kitchen.ts (test-only library with the shapes the real ones lack)
// Run: npx tsc -p . && node dist/test/fidl/regenerate_fixtures.js [--src]
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
  if (process.argv.includes('--src')) {
    for (const f of generateTypeScript([zxFixture(), runnerFixture(), pagerFixture()])) {
      fs.mkdirSync(path.join(repo, 'src/gen'), { recursive: true });
      fs.writeFileSync(path.join(repo, 'src/gen', f.path), f.content);
    }
  }
}
