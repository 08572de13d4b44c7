// Run firmware code under the real MicroPython interpreter (WebAssembly build from npm).
// usage: node tests/firmware/mp_run.mjs <micropython.mjs> <job.json>
// job: {"files": [[src, dest], ...], "path": [...], "code": "...", "async": bool,
//       "heap": bytes}
// Files are copied into MicroPython's in-memory filesystem at their board paths (/lib/...,
// /sim/..., /tests/...). `globalThis.tcpBridge` lets the firmware's JsTransport open real
// TCP connections through Node's `net` (bytes cross as hex strings); `globalThis.serialBridge`
// lets its UART open a real serial device (a pty's path) without blocking Node's loop.
import fs from "fs";
import net from "net";
import path from "path";
import { pathToFileURL } from "url";

const [mjs, jobPath] = process.argv.slice(2);
if (!mjs || !jobPath) {
  console.error("usage: mp_run.mjs <micropython.mjs> <job.json>");
  process.exit(2);
}
const job = JSON.parse(fs.readFileSync(jobPath, "utf8"));
const { loadMicroPython } = await import(pathToFileURL(path.resolve(mjs)).href);
const mp = await loadMicroPython({
  heapsize: job.heap || 32 * 1024 * 1024,
  stdout: (line) => console.log(line),
  stderr: (line) => console.error(line),
});

function mkdirs(dir) {
  let d = "";
  for (const part of dir.split("/").filter(Boolean)) {
    d += "/" + part;
    try { mp.FS.mkdir(d); } catch (e) { /* exists */ }
  }
}
for (const [src, dest] of job.files) {
  mkdirs(path.posix.dirname(dest));
  mp.FS.writeFile(dest, fs.readFileSync(src));
}

const socks = new Map();
let nextId = 1;
globalThis.tcpBridge = {
  open(host, port) {
    const id = nextId++;
    const e = { s: null, state: 1, buf: [], closed: false };
    e.s = net.createConnection({ host, port });
    e.s.setNoDelay(true);
    e.s.on("connect", () => { e.state = 2; });
    e.s.on("data", (d) => { e.buf.push(d); });
    e.s.on("error", () => {});
    e.s.on("close", () => { e.state = 0; e.closed = true; });
    socks.set(id, e);
    return id;
  },
  state(id) { const e = socks.get(id); return e ? e.state : 0; },
  read(id) {
    const e = socks.get(id);
    if (!e) return null;
    if (e.buf.length) { const b = Buffer.concat(e.buf); e.buf = []; return b.toString("hex"); }
    return e.closed ? null : "";
  },
  write(id, hex) {
    const e = socks.get(id);
    if (!e || e.state !== 2) return false;
    e.s.write(Buffer.from(hex, "hex"));
    return true;
  },
  close(id) { const e = socks.get(id); if (e) { e.s.destroy(); socks.delete(id); } },
};

const ttys = new Map();
globalThis.serialBridge = {
  open(p) {
    const { O_RDWR, O_NOCTTY, O_NONBLOCK } = fs.constants;
    let fd;
    try { fd = fs.openSync(p, O_RDWR | O_NOCTTY | O_NONBLOCK); } catch (e) { return -1; }
    const id = nextId++;
    ttys.set(id, fd);
    return id;
  },
  read(id) {
    const fd = ttys.get(id);
    if (fd === undefined) return null;
    const buf = Buffer.alloc(4096);
    let n;
    try { n = fs.readSync(fd, buf, 0, buf.length, null); } catch (e) {
      if (e.code === "EAGAIN") return "";
      return null;  // EIO: the other end hung up (unplugged)
    }
    return buf.subarray(0, n).toString("hex");
  },
  write(id, hex) {
    const fd = ttys.get(id);
    if (fd === undefined) return false;
    try { fs.writeSync(fd, Buffer.from(hex, "hex")); return true; } catch (e) { return false; }
  },
  close(id) {
    const fd = ttys.get(id);
    if (fd !== undefined) { try { fs.closeSync(fd); } catch (e) { /* gone */ } ttys.delete(id); }
  },
};

const prelude = "import sys\nsys.path[:0] = " + JSON.stringify(job.path || ["/lib"]) + "\n";
let code = 0;
try {
  if (job.async) await mp.runPythonAsync(prelude + job.code);
  else mp.runPython(prelude + job.code);
} catch (e) {
  console.error("MicroPython failure: " + (e.type || e.name) + ": " + String(e.message).slice(0, 4000));
  code = 1;
}
for (const e of socks.values()) e.s.destroy();
for (const fd of ttys.values()) { try { fs.closeSync(fd); } catch (e) { /* gone */ } }
process.exit(code);
