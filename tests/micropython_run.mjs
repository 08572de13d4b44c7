// Run Python code under the real MicroPython interpreter (WebAssembly build from npm).
// usage: node tests/micropython_run.mjs <micropython.mjs> <code> <repo-relative file>...
// The files are copied into MicroPython's in-memory filesystem under /repo, keeping the
// repository layout; /repo is put first on sys.path. Exit code 0 when the code ran.
import fs from "fs";
import path from "path";
import { fileURLToPath, pathToFileURL } from "url";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const [mjs, code, ...files] = process.argv.slice(2);
if (!mjs || !code) {
  console.error("usage: micropython_run.mjs <micropython.mjs> <code> <file>...");
  process.exit(2);
}
const { loadMicroPython } = await import(pathToFileURL(path.resolve(mjs)).href);
const mp = await loadMicroPython({
  heapsize: 16 * 1024 * 1024,
  stdout: (line) => console.log(line),
  stderr: (line) => console.error(line),
});
function mkdirs(dir) {
  let d = "";
  for (const part of dir.split("/")) {
    d += "/" + part;
    try { mp.FS.mkdir(d); } catch (e) { /* exists */ }
  }
}
for (const f of files) {
  mkdirs("repo/" + path.dirname(f));
  mp.FS.writeFile("/repo/" + f, fs.readFileSync(path.join(repo, f)));
}
try {
  mp.runPython("import sys\nsys.path.insert(0, '/repo')\nprint(sys.implementation.name, sys.version)\n" + code);
} catch (e) {
  console.error("MicroPython failure:", e.message);
  process.exit(1);
}
