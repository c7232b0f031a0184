// Loads the C++ addon built by node-gyp at install time (build/Release/starnix_native.node).
// Every TypeScript module that needs the kernel goes through this one object.
import * as path from 'path';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type NativeAddon = any;

function load(): NativeAddon {
  // STARNIX_PAGER_NATIVE names another build of the addon: the sanitizer runs
  // (scripts/test_sanitize.sh) load build-sanitize/<variant>/build/Release/starnix_native.node.
  const chosen = process.env.STARNIX_PAGER_NATIVE;
  if (chosen) return require(path.resolve(chosen));
  // Works both from src/ (ts-jest) and from dist/src/ (compiled).
  const candidates = [
    path.join(__dirname, '..', 'build', 'Release', 'starnix_native.node'),
    path.join(__dirname, '..', '..', 'build', 'Release', 'starnix_native.node'),
  ];
  let lastError: unknown;
  for (const file of candidates) {
    try {
      return require(file);
    } catch (e) {
      lastError = e;
      if ((e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw e;
    }
  }
  // Installed as a dependency, the addon builds in the package's install script (node-gyp); an
  // install that skipped scripts (--ignore-scripts, or npm's allowScripts policy) has none.
  throw new Error(
    'starnix-pager: the native addon is not built: run `npm rebuild starnix-pager` (as a dependency: allow its ' +
      'install script with "allowScripts": {"starnix-pager": true} in your package.json), or `npm run build:native` ' +
      `in a checkout (${String(lastError).split('\n')[0]})`,
  );
}

export const native: NativeAddon = load();
