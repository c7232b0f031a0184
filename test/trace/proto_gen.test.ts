// src/gen/perfetto/ is checked in: it must be exactly what `npm run codegen:proto` generates from
// proto/perfetto_trace.proto (protoc with the protoc-gen-es plugin from node_modules).
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const REPO = path.join(__dirname, '..', '..');

function hasProtoc(): boolean {
  try {
    execFileSync('protoc', ['--version'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

const protoc = hasProtoc();
(protoc ? test : test.skip)(`${protoc ? '' : '[skipped: protoc not installed (scripts/install-system-deps.sh)] '}src/gen/perfetto is what codegen:proto generates`, () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'proto-gen-'));
  try {
    execFileSync('protoc', [
      `--plugin=protoc-gen-es=${path.join(REPO, 'node_modules', '.bin', 'protoc-gen-es')}`,
      `--es_out=${out}`,
      '--es_opt=target=ts,import_extension=none',
      '-I', path.join(REPO, 'proto'),
      path.join(REPO, 'proto', 'perfetto_trace.proto'),
    ], { stdio: 'pipe' });
    const generated = fs.readdirSync(out).sort();
    expect(generated).toEqual(fs.readdirSync(path.join(REPO, 'src', 'gen', 'perfetto')).sort());
    for (const f of generated) {
      const fresh = fs.readFileSync(path.join(out, f), 'utf8');
      if (fresh !== fs.readFileSync(path.join(REPO, 'src', 'gen', 'perfetto', f), 'utf8')) {
        throw new Error(`src/gen/perfetto/${f} is stale: run \`npm run codegen:proto\``);
      }
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
