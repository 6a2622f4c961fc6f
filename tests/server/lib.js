// lib.js — what the server tests share: starting `deepc serve` on a test
// model, running `deepc generate` for reference answers, raw HTTP requests,
// and a small test runner that prints "ok"/"FAIL" lines and the total
// "N passed, N failed" that tests/run.sh adds up.
"use strict";
const { spawn, execFileSync } = require("child_process");
const fs = require("fs");
const http = require("http");

const BUILD = process.env.DEEPC_BUILD || "build";
const BIN = `${BUILD}/deepc`;
const MODELS = `${BUILD}/serve-test`;

// decode bytes as a browser or the openai client does (U+FFFD per bad subpart)
const utf8 = (b) => new TextDecoder("utf-8").decode(b);

// startServer: `deepc serve ARGS --port 0`, resolved once it prints that it is ready
function startServer(args, { waitReady = true, env = {} } = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(BIN, ["serve", "--port", "0", "-t", "1", ...args], {
      env: { ...process.env, OMP_WAIT_POLICY: "passive", ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let log = "", port = 0, done = false;
    const timer = setTimeout(() => finish(new Error("the server did not start in 30 s:\n" + log)), 30000);
    function finish(err) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) { proc.kill("SIGKILL"); reject(err); return; }
      const url = `http://127.0.0.1:${port}`;
      resolve({ proc, port, url, get log() { return log; }, exited: new Promise((r) => proc.on("exit", (code, sig) => r({ code, sig }))), stop: () => stop(proc) });
    }
    proc.stderr.on("data", (d) => {
      log += d.toString();
      const m = /listening on http:\/\/[^:]+:(\d+)/.exec(log);
      if (m) port = +m[1];
      if (port && (!waitReady || /deepc serve: ready/.test(log))) finish();
    });
    proc.on("exit", (code) => finish(new Error(`the server exited (${code}) before it was ready:\n${log}`)));
  });
}

function stop(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    const t = setTimeout(() => proc.kill("SIGKILL"), 10000);
    proc.on("exit", () => { clearTimeout(t); resolve(); });
    proc.kill("SIGTERM");
  });
}

// generate: the text `deepc generate` prints, less the trailing newline and
// the end-of-sequence token's text, which generate prints when the model
// ends its answer (an API answer never holds it)
const EOS_TEXT = "<｜end▁of▁sentence｜>";
function generate(args) {
  const out = execFileSync(BIN, ["generate", "-t", "1", ...args], { env: { ...process.env, OMP_WAIT_POLICY: "passive" }, stdio: ["ignore", "pipe", "pipe"] });
  let s = utf8(out);
  if (s.endsWith("\n")) s = s.slice(0, -1);
  if (s.endsWith(EOS_TEXT)) s = s.slice(0, -EOS_TEXT.length);
  return s;
}

// request: raw HTTP to 127.0.0.1 (bodies the openai client would not send)
function request(port, method, path, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const buf = body === undefined ? null : Buffer.isBuffer(body) ? body : Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
    const req = http.request({ host: "127.0.0.1", port, method, path, headers: { ...(buf ? { "Content-Type": "application/json", "Content-Length": buf.length } : {}), ...headers } }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json = null;
        try { json = JSON.parse(text); } catch (e) {}
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    if (buf) req.end(buf); else req.end();
  });
}

// sse: the data events of a streamed response body
function sse(text) {
  return text.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => e.slice(6)).map((d) => (d === "[DONE]" ? d : JSON.parse(d)));
}

function rss(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? +m[1] : -1;
}

// ---------------------------------------------------------------- the runner
const tests = [];
function test(name, fn, timeoutMs = 60000) { tests.push({ name, fn, timeoutMs }); }

class Fail extends Error {}
function check(cond, msg) { if (!cond) throw new Fail(msg); }
function eq(a, b, what) {
  if (a !== b) throw new Fail(`${what}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`);
}

async function run() {
  let pass = 0, fail = 0;
  for (const t of tests) {
    const t0 = Date.now();
    let timer;
    try {
      await Promise.race([t.fn(), new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`timed out after ${t.timeoutMs} ms`)), t.timeoutMs)))]);
      pass++;
      console.log(`  ok   ${t.name} (${Date.now() - t0} ms)`);
    } catch (e) {
      fail++;
      console.log(`  FAIL ${t.name} (${Date.now() - t0} ms): ${e instanceof Fail ? e.message : e.stack || e}`);
    } finally {
      clearTimeout(timer);
    }
  }
  console.log(`${pass} passed, ${fail} failed`);
  return fail;
}

module.exports = { BUILD, BIN, MODELS, startServer, stop, generate, request, sse, rss, test, check, eq, run, utf8 };
