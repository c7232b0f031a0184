// The feature libraries of test/codegen/features (one small library per language feature, written
// for this project): their golden IR (golden/<library>.json) and generated bindings (gen/*.ts),
// both checked in and compared by features.test.ts, so a change in what the compiler produces
// shows up as a diff to review.
// Run: npx tsc -p . && node dist/test/codegen/features/regenerate.js
import * as fs from 'fs';
import * as path from 'path';
import { generateTypeScript } from '../../../codegen/backend';
import { compileSources } from '../../../codegen/frontend/compile';
import { IrRoot, irToJson } from '../../../codegen/ir';

const HERE = path.resolve(__dirname, '..', '..', '..', '..', 'test', 'codegen', 'features');
export const FEATURE_DIR = fs.existsSync(HERE) ? HERE : __dirname;

export const FEATURES = ['byte', 'consts', 'generated_name', 'newtype', 'overlay', 'service', 'sparse', 'versioning'];

/** The IR of one feature library (its file name relative to the repository, as golden files record it). */
export function featureIr(feature: string): IrRoot {
  const rel = `test/codegen/features/${feature}.fidl`;
  const text = fs.readFileSync(path.join(FEATURE_DIR, `${feature}.fidl`), 'utf8');
  const roots = compileSources([{ filename: rel, text }]);
  return roots[roots.length - 1];
}

export function goldenIrPath(root: IrRoot): string {
  return path.join(FEATURE_DIR, 'golden', `${root.name}.json`);
}

/** Generated modules of every feature library, as they are checked in under gen/. */
export function featureModules(): Array<{ path: string; content: string }> {
  return generateTypeScript(FEATURES.map(featureIr), { runtimeImport: '../../../../src/fidl' });
}

if (require.main === module) {
  fs.mkdirSync(path.join(FEATURE_DIR, 'golden'), { recursive: true });
  fs.mkdirSync(path.join(FEATURE_DIR, 'gen'), { recursive: true });
  for (const f of FEATURES) {
    const root = featureIr(f);
    fs.writeFileSync(goldenIrPath(root), irToJson(root));
  }
  for (const m of featureModules()) fs.writeFileSync(path.join(FEATURE_DIR, 'gen', m.path), m.content);
}
