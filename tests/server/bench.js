// bench.js — serving figures of OpenAI-compatible servers (deepc serve,
// llama-server) measured in the same run: for each number of concurrent
// clients, every client sends its requests one after another (streamed
// /v1/completions, greedy, ignore_eos, a fixed max_tokens, a prompt of its
// own so no cache helps; completions rather than chat because llama-server's
// chat output parser refuses an untrained model's random text). The servers
// take turns level by level, REPS times, so a machine whose other load comes
// and goes treats them alike; each level prints the best and the median
// aggregate tokens/s and the mean time to first token of the best run.
// A benchmark, not a test: it never fails on speed.
//   node tests/server/bench.js --url URL1,URL2 --label deepc,llama [--conc 1,2,4,8]
//        [--requests 2] [--max-tokens 32] [--reps 3]
"use strict";
const arg = (k, d) => { const i = process.argv.indexOf("--" + k); return i > 0 ? process.argv[i + 1] : d; };
const urls = arg("url", "http://127.0.0.1:8080").split(","), labels = arg("label", urls.join(",")).split(",");
const conc = arg("conc", "1,2,4,8").split(",").map(Number), per = +arg("requests", 2), maxTokens = +arg("max-tokens", 32);
const reps = +arg("reps", 3);

async function one(url, prompt) {
  const t0 = performance.now();
  const r = await fetch(url + "/v1/completions", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model: "model", prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream: true,
                           stream_options: { include_usage: true } }),
  });
  if (!r.ok) throw new Error(`${url}: ${r.status}: ${await r.text()}`);
  const rd = r.body.getReader(), dec = new TextDecoder();
  let pend = "", first = 0, pieces = 0, usage = null;
  for (;;) {
    const { value, done } = await rd.read();
    if (done) break;
    pend += dec.decode(value, { stream: true });
    let k;
    while ((k = pend.indexOf("\n\n")) >= 0) {
      const ev = pend.slice(0, k).replace(/^data: /, "");
      pend = pend.slice(k + 2);
      if (!ev.startsWith("{")) continue;
      const j = JSON.parse(ev);
      if (j.usage) usage = j.usage;
      const c = j.choices && j.choices[0];
      if (c && (c.text || (c.delta && c.delta.content))) {
        if (!first) first = performance.now();
        pieces++;
      }
    }
  }
  return { ttft: first ? (first - t0) / 1000 : NaN, tokens: usage ? usage.completion_tokens : pieces }; /* NaN: no text came */
}

async function level(url, c, rep) {
  const res = [];
  const t0 = performance.now();
  await Promise.all(Array.from({ length: c }, async (_, w) => {
    for (let k = 0; k < per; k++) res.push(await one(url, `Run ${rep}, client ${w} of ${c}, request ${k}: a long story about the sea.`));
  }));
  const secs = (performance.now() - t0) / 1000, toks = res.reduce((a, r) => a + r.tokens, 0);
  const tt = res.map((r) => r.ttft).filter((t) => t === t);
  return { toks, secs, tps: toks / secs, ttft: tt.reduce((a, b) => a + b, 0) / Math.max(tt.length, 1) };
}

(async () => {
  for (const u of urls) await one(u, "warm up"); // first-request costs out of the figures
  console.log(`${per} requests per client, ${maxTokens} tokens each (greedy, ignore_eos); best and median of ${reps} turns`);
  console.log("  server            clients  tokens/s best  median   TTFT (best run)   tokens/run");
  for (const c of conc) {
    const runs = urls.map(() => []);
    for (let r = 0; r < reps; r++) for (let i = 0; i < urls.length; i++) runs[i].push(await level(urls[i], c, r));
    for (let i = 0; i < urls.length; i++) {
      const s = runs[i].slice().sort((a, b) => b.tps - a.tps), best = s[0], med = s[Math.floor(s.length / 2)];
      console.log(`  ${labels[i].padEnd(16)}  ${String(c).padStart(7)}  ${best.tps.toFixed(1).padStart(13)}  ${med.tps.toFixed(1).padStart(6)}  ${best.ttft.toFixed(3).padStart(14)}s   ${String(best.toks).padStart(10)}`);
    }
  }
})().catch((e) => { console.error(String(e)); process.exit(1); });
