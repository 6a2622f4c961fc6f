// web.test.js — the web chat in headless Chromium (Debian's chromium driven
// by playwright-core): the page loads with nothing from the network but the
// server, a message sent streams an answer that grows on screen, the stop
// button ends it, the conversation stays in the page (and survives a
// reload); screenshots go to $BUILD/serve/.
"use strict";
const fs = require("fs");
const { chromium } = require("playwright-core");
const { BUILD, MODELS, startServer, check, eq, test, run } = require("./lib");

let S, browser, page, story;
const shots = `${BUILD}/serve`;
const external = [];

// a message whose greedy answer runs 2000 tokens, so there is time to watch
// it stream and to stop it: the server runs with --ignore-eos (a random
// model's greedy answers otherwise end early at the end-of-sequence token
// for most messages, and which ones changes with the tokenizer's corpus)
async function longMessage() {
  for (let i = 0; i < 20; i++) {
    const msg = `Tell me a very long story, number ${i}.`;
    const r = await fetch(S.url + "/v1/chat/completions", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: "tiny", temperature: 0, max_tokens: 2000, messages: [{ role: "system", content: "You are a test." }, { role: "user", content: msg }] }) });
    if ((await r.json()).choices[0].finish_reason === "length") return msg;
  }
  return null;
}

test("start the server and Chromium", async () => {
  S = await startServer(["-m", `${MODELS}/tiny-long`, "--alias", "tiny", "--ctx", "16384", "--ignore-eos"]);
  story = await longMessage();
  check(story, "no message with a 2000-token greedy answer");
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu"] });
  page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  page.on("request", (r) => { if (!r.url().startsWith(S.url)) external.push(r.url()); });
  fs.mkdirSync(shots, { recursive: true });
}, 60000);

test("the page loads, self-contained, and finds the model", async () => {
  await page.goto(S.url + "/");
  eq(await page.title(), "deepc chat", "title");
  await page.waitForFunction(() => document.getElementById("status").textContent === "tiny", null, { timeout: 30000 });
  check(await page.isVisible("#send"), "send button");
  check(!(await page.isVisible("#stop")), "no stop button while idle");
  eq(external.length, 0, "requests outside the server: " + external.join(", "));
});

test("a message streams an answer; stop ends it", async () => {
  await page.fill("#system", "You are a test.");
  await page.fill("#temp", "0");
  eq(await page.textContent("#tempv"), "0", "temperature 0 shown");
  await page.fill("#input", story);
  await page.keyboard.press("Enter");
  await page.waitForSelector(".msg.user", { timeout: 20000 });
  eq(await page.textContent(".msg.user .bubble"), story, "the user's message");
  await page.waitForSelector("#stop", { state: "visible", timeout: 5000 });
  // the answer grows while it streams
  const len = () => page.evaluate(() => (document.querySelector(".msg.assistant .content") || {}).textContent?.length || 0);
  await page.waitForFunction(() => (document.querySelector(".msg.assistant .content")?.textContent.length || 0) > 0, null, { timeout: 30000 });
  const a = await len();
  await page.waitForFunction((n) => (document.querySelector(".msg.assistant .content")?.textContent.length || 0) > n, a, { timeout: 30000 });
  const b = await len();
  check(b > a, `the answer grew: ${a} -> ${b}`);
  await page.screenshot({ path: `${shots}/web-streaming.png` });
  await page.click("#stop");
  await page.waitForSelector("#send", { state: "visible", timeout: 5000 });
  const meta = await page.textContent(".msg.assistant .meta");
  check(/stopped/.test(meta), "marked stopped: " + meta);
  const c = await len();
  await new Promise((r) => setTimeout(r, 500));
  eq(await len(), c, "nothing more after stop");
  await page.screenshot({ path: `${shots}/web-stopped.png` });
  check(fs.statSync(`${shots}/web-stopped.png`).size > 10000, "screenshot written");
}, 60000);

test("the server let go of the stopped answer", async () => {
  let running = -1;
  for (let t = 0; t < 50 && running !== 0; t++) {
    const m = await (await fetch(S.url + "/metrics")).text();
    running = +/^deepc_requests_running (\S+)$/m.exec(m)[1];
    if (running) await new Promise((r) => setTimeout(r, 100));
  }
  eq(running, 0, "requests running");
});

test("a second turn, with a token limit, completes; the conversation survives a reload", async () => {
  await page.fill("#maxtok", "12");
  await page.fill("#input", "Short one now.");
  await page.click("#send");
  await page.waitForFunction(() => document.querySelectorAll(".msg").length === 4 && !document.body.classList.contains("busy"), null, { timeout: 20000 });
  const meta = await page.textContent(".msg.assistant:last-child .meta");
  check(/12 tokens/.test(meta) && /token limit/.test(meta),
        "stats: " + meta + " (the answer: " + (await page.textContent(".msg.assistant:last-child")) + ")");
  await page.reload();
  await page.waitForSelector(".msg.assistant", { timeout: 20000 });
  eq(await page.locator(".msg").count(), 4, "messages after a reload");
  eq(await page.inputValue("#system"), "You are a test.", "system prompt kept");
  await page.screenshot({ path: `${shots}/web.png` });
}, 60000);

test("R1: the reasoning streams into a folded section", async () => {
  const R = await startServer(["-m", `${MODELS}/tiny-r1`]);
  try {
    const p = await browser.newPage({ viewport: { width: 1000, height: 700 } });
    await p.goto(R.url + "/");
    await p.waitForFunction(() => document.getElementById("status").textContent === "tiny-r1", null, { timeout: 30000 });
    let msg = null; /* a question whose greedy answer reasons for a while */
    for (let i = 0; i < 20 && !msg; i++) {
      const q = `Why is the sky blue? (${i})`;
      const r = await fetch(R.url + "/v1/chat/completions", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ model: "tiny-r1", temperature: 0, max_tokens: 30, messages: [{ role: "user", content: q }] }) });
      if ((await r.json()).choices[0].message.reasoning_content.length > 20) msg = q;
    }
    check(msg, "no question with 20 characters of reasoning");
    await p.click("#new");
    await p.fill("#maxtok", "30");
    await p.fill("#temp", "0");
    eq(await p.inputValue("#temp"), "0", "temperature 0");
    await p.fill("#input", msg);
    await p.keyboard.press("Enter");
    await p.waitForFunction(() => document.querySelectorAll(".msg").length === 2 && !document.body.classList.contains("busy"), null, { timeout: 20000 });
    const d = p.locator(".msg.assistant details.think");
    eq(await d.count(), 1, "a reasoning section");
    eq(await d.getAttribute("open"), null, "folded");
    check(/Reasoning \(\d+ characters\)/.test(await p.textContent(".msg.assistant summary")), "summary");
    await p.click(".msg.assistant summary");
    check((await p.textContent(".msg.assistant .rtext")).length > 0, "the reasoning shows when unfolded");
    await p.screenshot({ path: `${shots}/web-r1.png` });
    await p.close();
  } finally {
    await R.stop();
  }
}, 60000);

test("close", async () => {
  await browser.close();
  await S.stop();
});

run().then((f) => process.exit(f ? 1 : 0));
