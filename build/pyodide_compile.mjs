// Build helper, run by build/build.py under Node:
//
//   node build/pyodide_compile.mjs JOB.json
//
// Starts the pinned Pyodide (node_modules/pyodide) and runs
// build/pyodide_compile.py inside it, so that every .pyc is compiled by the
// exact CPython build that will import it in the browser (a .pyc is only valid
// for the interpreter version that wrote it; this machine's CPython is not
// Pyodide's). The job file names the inputs and the output directory; the
// Python side writes the trimmed, precompiled stdlib zip, the precompiled
// runtime tree and a manifest into it.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const jobPath = resolve(process.argv[2]);
const job = JSON.parse(readFileSync(jobPath, "utf-8"));
const { loadPyodide } = await import(resolve(job.pyodide_dir, "pyodide.mjs"));

const pyodide = await loadPyodide({
  indexURL: resolve(job.pyodide_dir) + "/",
  stdout: (line) => process.stdout.write(line + "\n"),
  stderr: (line) => process.stderr.write(line + "\n"),
});
// What Pyodide itself imported while starting: the trimmed stdlib must keep it.
const startup = pyodide.runPython("import sys; sorted(sys.modules)").toJs();

// The real files, visible inside Pyodide.
const { FS } = pyodide;
FS.mkdirTree("/job/src");
FS.mkdirTree("/job/out");
FS.mount(FS.filesystems.NODEFS, { root: resolve(job.root) }, "/job/src");
FS.mount(FS.filesystems.NODEFS, { root: resolve(job.out) }, "/job/out");

// The runtime archive, unpacked by the browser's own code (no Python runs).
const { untarInto } = await import(resolve(job.root, "widget", "engine", "untar.mjs"));
untarInto(FS, new Uint8Array(readFileSync(job.runtime_tar)), "/job/runtime");

pyodide.globals.set("JOB", JSON.stringify({ ...job, startup_modules: startup }));
pyodide.runPython(readFileSync(resolve(here, "pyodide_compile.py"), "utf-8"), { filename: "pyodide_compile.py" });
