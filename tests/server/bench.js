// bench.js — serving figures of any OpenAI-compatible server (deepc serve,
// llama-server): for each number of concurrent clients, every client sends
// its requests one after another (streamed /v1/completions, greedy,
// ignore_eos, a fixed max_tokens, a prompt of its own so no cache helps;
// completions rather than chat because llama-server's chat output parser
// refuses the random text of an untrained model);
// prints aggregate generated tokens/s and time to first token (mean and
// worst). A benchmark, not a test: it never fails on speed.
//   node tests/server/bench.js --url http://127.0.0.1:8080 --model NAME
//        [--conc 1,2,4,8] [--requests 3] [--max-tokens 64] [--label deepc]
"use strict";
const arg = (k, d) => { const i = process.argv.indexOf("--" + k); return i > 0 ? process.argv[i + 1] : d; };
const url = arg("url", "http://127.0.0.1:8080"), model = arg("model", "model"), label = arg("label", url);
const conc = arg("conc", "1,2,4,8").split(",").map(Number), per = +arg("requests", 3), maxTokens = +arg("max-tokens", 64);

async function one(prompt) {
  const t0 = performance.now();
  const r = await fetch(url + "/v1/completions", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model, prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream: true,
                           stream_options: { include_usage: true } }),
  });
  if (!r.ok) throw new Error(`${r.status}: ${await r.text()}`);
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
      if (c && (c.text || (c.delta && (c.delta.content || c.delta.reasoning_content)))) {
        if (!first) first = performance.now();
        pieces++;
      }
    }
  }
  return { ttft: (first - t0) / 1000, tokens: usage ? usage.completion_tokens : pieces };
}

async function level(c) {
  const res = [];
  const t0 = performance.now();
  await Promise.all(Array.from({ length: c }, async (_, w) => {
    for (let k = 0; k < per; k++) res.push(await one(`Client ${w} of ${c}, request ${k}: tell me a long story about the sea.`));
  }));
  const secs = (performance.now() - t0) / 1000, toks = res.reduce((a, r) => a + r.tokens, 0);
  const tt = res.map((r) => r.ttft);
  return { c, n: res.length, toks, secs, tps: toks / secs, ttft: tt.reduce((a, b) => a + b, 0) / tt.length, ttftMax: Math.max(...tt) };
}

(async () => {
  await one("warm up"); // first-request costs out of the figures
  console.log(`${label}: ${per} requests per client, ${maxTokens} tokens each (greedy, ignore_eos)`);
  console.log("  clients  requests  tokens   seconds  tokens/s  TTFT mean  TTFT max");
  for (const c of conc) {
    const r = await level(c);
    console.log(`  ${String(r.c).padStart(7)}  ${String(r.n).padStart(8)}  ${String(r.toks).padStart(6)}  ${r.secs.toFixed(2).padStart(8)}  ${r.tps.toFixed(1).padStart(8)}  ${r.ttft.toFixed(3).padStart(8)}s  ${r.ttftMax.toFixed(3).padStart(7)}s`);
  }
})().catch((e) => { console.error(String(e)); process.exit(1); });
