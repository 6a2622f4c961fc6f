// load.test.js — a load test on loopback (127.0.0.1 only), bounded in time
// and count: 32 concurrent clients send streamed and plain requests with
// malformed, wrongly typed, invalid UTF-8, oversized (1.5 MiB) and
// unknown-model requests mixed in; every valid request must be answered in
// full (200, a finish_reason, [DONE]) and every bad one must be a 4xx with an
// error object; then wrk hammers POST /v1/chat/completions for 3 s. The
// server must not crash, and its RSS is logged before, after one round and
// after a second (which must not grow it by more than a little: no leak).
"use strict";
const { execFileSync } = require("child_process");
const path = require("path");
const { MODELS, startServer, request, sse, rss, check, eq, test, run } = require("./lib");

let S;
const CLIENTS = 32, MAX_REQUESTS = 1000, MAX_SECONDS = 12;
const MSG = (i) => [{ role: "user", content: `Load test message ${i}` }];

// kind of request i: mostly valid, some bad of each sort
function make(i) {
  const k = i % 20;
  if (k < 11) return { ok: true, stream: true, body: { model: "tiny", messages: MSG(i), max_tokens: 8 + (i % 25), temperature: (i % 3) * 0.5, seed: i, stream: true, stream_options: { include_usage: true }, ...(i % 7 === 0 ? { n: 2 } : {}), ...(i % 5 === 0 ? { stop: ["e", "a"] } : {}) } };
  if (k < 13) return { ok: true, path: "/v1/completions", body: { model: "tiny", prompt: "load " + i, max_tokens: 6 + (i % 9) } };
  if (k < 14) return { ok: true, body: { model: "tiny", messages: MSG(i), max_tokens: 5, logprobs: true, top_logprobs: 2 } };
  if (k === 14) return { ok: false, raw: '{"model": "tiny", "messages": [{"role": "user", "content": "x"' };
  if (k === 15) return { ok: false, body: { model: "tiny", messages: MSG(i), temperature: "warm" } };
  if (k === 16) return { ok: false, raw: Buffer.concat([Buffer.from('{"model":"tiny","messages":[{"role":"user","content":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}]}')]) };
  if (k === 17) return { ok: false, raw: JSON.stringify({ model: "tiny", messages: [{ role: "user", content: "y".repeat(1536 * 1024) }] }) };
  if (k === 18) return { ok: false, body: { model: "nope", messages: MSG(i) } };
  return { ok: false, body: { model: "tiny", messages: MSG(i), max_tokens: 1 << 20 } };
}

async function one(i, tally) {
  const r = make(i);
  const res = await request(S.port, "POST", r.path || "/v1/chat/completions", r.raw !== undefined ? r.raw : r.body);
  if (!r.ok) {
    if (res.status >= 400 && res.status < 500 && res.json && res.json.error && "code" in res.json.error) tally.bad4xx++;
    else tally.wrong.push(`bad request ${i} got ${res.status}: ${res.text.slice(0, 120)}`);
    return;
  }
  if (res.status !== 200) { tally.wrong.push(`valid request ${i} got ${res.status}: ${res.text.slice(0, 200)}`); return; }
  if (r.stream) {
    const ev = sse(res.text);
    const n = r.body.n || 1, fin = ev.filter((e) => e !== "[DONE]" && e.choices.length && e.choices[0].finish_reason).length;
    const usage = ev.filter((e) => e !== "[DONE]" && e.usage).length;
    if (ev[ev.length - 1] !== "[DONE]" || fin !== n || usage !== 1) { tally.wrong.push(`stream ${i} incomplete: ${res.text.slice(-200)}`); return; }
  } else if (!res.json || !res.json.choices || !res.json.choices[0].finish_reason) {
    tally.wrong.push(`answer ${i} incomplete: ${res.text.slice(0, 200)}`);
    return;
  }
  tally.valid++;
}

async function round(label) {
  const tally = { valid: 0, bad4xx: 0, wrong: [] };
  const t0 = Date.now();
  let next = 0;
  async function worker() {
    while (next < MAX_REQUESTS && Date.now() - t0 < MAX_SECONDS * 1000) await one(next++, tally);
  }
  await Promise.all(Array.from({ length: CLIENTS }, worker));
  const secs = (Date.now() - t0) / 1000;
  console.log(`    ${label}: ${next} requests in ${secs.toFixed(1)} s by ${CLIENTS} clients: ${tally.valid} answered, ${tally.bad4xx} bad ones 4xx, ${tally.wrong.length} wrong; RSS ${(rss(S.proc.pid) / 1024).toFixed(1)} MiB`);
  for (const w of tally.wrong.slice(0, 5)) console.log("      " + w);
  return { ...tally, n: next };
}

let before;
test("start the server", async () => {
  S = await startServer(["-m", `${MODELS}/tiny`, "--parallel", "4", "--queue", "64"]);
  await request(S.port, "POST", "/v1/chat/completions", { model: "tiny", messages: MSG(0), max_tokens: 4 });
  before = rss(S.proc.pid);
  console.log(`    RSS before: ${(before / 1024).toFixed(1)} MiB`);
});

let after1;
test("round 1: every valid request answered, every bad one 4xx", async () => {
  const t = await round("round 1");
  eq(t.wrong.length, 0, "wrong answers");
  check(t.valid > 50 && t.bad4xx > 20, `enough of both: ${t.valid} valid, ${t.bad4xx} bad`);
  after1 = rss(S.proc.pid);
}, 60000);

test("wrk: 16 connections for 3 s, all 200", async () => {
  const lua = path.join(__dirname, "wrk_chat.lua");
  const out = execFileSync("wrk", ["-t2", "-c16", "-d3s", "--timeout", "10s", "-s", lua, `${S.url}/v1/chat/completions`], { encoding: "utf8", timeout: 30000 });
  const reqs = +(/(\d+) requests in/.exec(out) || [0, 0])[1];
  const rate = (/Requests\/sec:\s+(\S+)/.exec(out) || [0, "?"])[1];
  console.log(`    wrk: ${reqs} requests, ${rate} requests/s`);
  check(reqs > 10, "wrk made requests:\n" + out);
  check(!/Non-2xx/.test(out) && !/Socket errors/.test(out), "wrk saw errors:\n" + out);
}, 60000);

test("round 2: the same again, RSS does not keep growing, still healthy", async () => {
  const t = await round("round 2");
  eq(t.wrong.length, 0, "wrong answers");
  const after2 = rss(S.proc.pid);
  console.log(`    RSS before ${(before / 1024).toFixed(1)} MiB, after round 1 ${(after1 / 1024).toFixed(1)} MiB, after round 2 ${(after2 / 1024).toFixed(1)} MiB`);
  check(after1 - before < 256 * 1024, "round 1 grew RSS by more than 256 MiB");
  check(after2 - after1 < 32 * 1024, "round 2 grew RSS by more than 32 MiB (a leak?)");
  eq((await request(S.port, "GET", "/health")).status, 200, "health");
  const m = (await request(S.port, "GET", "/metrics")).text;
  eq(+/^deepc_requests_running (\S+)$/m.exec(m)[1], 0, "nothing left running");
  eq(S.proc.exitCode, null, "still alive");
}, 60000);

test("stop: exit 0", async () => {
  await S.stop();
  eq(S.proc.exitCode, 0, "exit status");
});

run().then((f) => process.exit(f ? 1 : 0));
