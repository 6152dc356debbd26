// The runtime archive (the ustar file build/build.py `_tar` writes: regular
// files and directories, names up to 255 bytes) written into Pyodide's file
// system from JavaScript. Pyodide's unpackArchive runs Python's shutil and
// tarfile to do it: ~0.4 s at every start, cold or warm, and tarfile and
// gzip (~170 KB of .pyc) in every visitor's stdlib download. Here it is a
// loop over 512-byte headers.

const BLOCK = 512;
const decoder = new TextDecoder();

function field(data, at, length) {
  let end = at;
  while (end < at + length && data[end] !== 0) end += 1;
  return decoder.decode(data.subarray(at, end));
}

function octal(data, at, length) {
  const text = field(data, at, length).trim();
  return /^[0-7]+$/.test(text) ? parseInt(text, 8) : NaN;
}

// The header checksum: every byte of the header, the checksum field read as spaces.
function checksumOk(data, at) {
  let sum = 0;
  for (let i = 0; i < BLOCK; i += 1) sum += i >= 148 && i < 156 ? 32 : data[at + i];
  return sum === octal(data, at + 148, 8);
}

// Writes every entry of `bytes` under `dir` with `FS` (Emscripten's file
// system: pyodide.FS); returns the number of files written. Throws on
// anything that is not a well-formed archive of plain files and folders.
export function untarInto(FS, bytes, dir) {
  const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let files = 0;
  for (let at = 0; at + BLOCK <= data.length; ) {
    if (data.subarray(at, at + BLOCK).every((b) => b === 0)) break; // the end-of-archive blocks
    const name = field(data, at, 100);
    const prefix = field(data, at + 257, 6) === "ustar" ? field(data, at + 345, 155) : "";
    const path = prefix ? `${prefix}/${name}` : name;
    const size = octal(data, at + 124, 12);
    const type = data[at + 156] === 0 ? "0" : String.fromCharCode(data[at + 156]);
    const start = at + BLOCK;
    if (!checksumOk(data, at) || !Number.isFinite(size) || start + size > data.length) {
      throw new Error(`runtime archive: a damaged header at byte ${at}`);
    }
    const parts = path.split("/").filter((p) => p !== "");
    if (!parts.length || parts.some((p) => p === "." || p === "..") || path.startsWith("/")) {
      throw new Error(`runtime archive: refused path ${JSON.stringify(path)}`);
    }
    const target = `${dir}/${parts.join("/")}`;
    if (type === "5") {
      FS.mkdirTree(target);
    } else if (type === "0") {
      FS.mkdirTree(target.slice(0, target.lastIndexOf("/")));
      FS.writeFile(target, data.slice(start, start + size));
      files += 1;
    } else {
      throw new Error(`runtime archive: unsupported entry type ${JSON.stringify(type)} for ${path}`);
    }
    at = start + Math.ceil(size / BLOCK) * BLOCK;
  }
  return files;
}
