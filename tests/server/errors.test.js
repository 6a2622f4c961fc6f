// errors.test.js — bad input gets an HTTP 4xx with OpenAI's error shape
// {"error": {"message", "type", "param", "code"}}, through raw HTTP and
// through the openai client (which must recognise the shape), and the server
// keeps serving afterwards.
"use strict";
const OpenAI = require("openai");
const { MODELS, startServer, request, check, eq, test, run } = require("./lib");

let S, K;
const V3 = `${MODELS}/tiny`;
const MSG = [{ role: "user", content: "hi" }];

// expectError: status, and the four fields of the error object
async function expectError(res, status, code, param) {
  eq(res.status, status, "status of " + res.text);
  check(res.json && res.json.error, "an error object: " + res.text);
  const e = res.json.error;
  for (const k of ["message", "type", "param", "code"]) check(k in e, `error.${k} missing: ${res.text}`);
  check(typeof e.message === "string" && e.message.length > 10, "message");
  if (code !== undefined) eq(e.code, code, "code");
  if (param !== undefined) eq(e.param, param, "param");
  return e;
}
const chat = (body, headers) => request(S.port, "POST", "/v1/chat/completions", body, headers);

test("start servers (one with an API key)", async () => {
  S = await startServer(["-m", V3, "--ctx", "256"]);
  K = await startServer(["-m", V3, "--api-key", "sekret"]);
});

test("malformed JSON, trailing text, not an object", async () => {
  await expectError(await chat('{"model": "tiny", "messages": ['), 400, "invalid_json", null);
  await expectError(await chat('{"model": "tiny", "messages": []} x'), 400, "invalid_json");
  await expectError(await chat("[1, 2]"), 400, "invalid_type");
  await expectError(await chat(""), 400, "invalid_json");
});

test("invalid UTF-8 in the body", async () => {
  const body = Buffer.concat([Buffer.from('{"model": "tiny", "messages": [{"role": "user", "content": "a'), Buffer.from([0xc3, 0x28]), Buffer.from('"}]}')]);
  const e = await expectError(await chat(body), 400, "invalid_utf8");
  check(e.message.includes(`at byte ${body.indexOf(0xc3)} of ${body.length}`), "names the byte: " + e.message);
});

test("wrong types and values name the parameter", async () => {
  const cases = [
    [{ model: "tiny", messages: MSG, temperature: "hot" }, "temperature", "invalid_type"],
    [{ model: "tiny", messages: MSG, temperature: 3 }, "temperature", "invalid_value"],
    [{ model: "tiny", messages: "hi" }, "messages", "invalid_type"],
    [{ model: "tiny", messages: [{ role: "robot", content: "x" }] }, "messages[0].role", "invalid_value"],
    [{ model: "tiny", messages: [{ role: "user" }] }, "messages[0].content", "missing_required_parameter"],
    [{ model: "tiny", messages: [{ role: "user", content: 5 }] }, "messages[0].content", "invalid_type"],
    [{ model: "tiny", messages: MSG, max_tokens: 1.5 }, "max_tokens", "invalid_type"],
    [{ model: "tiny", messages: MSG, max_tokens: 0 }, "max_tokens", "invalid_value"],
    [{ model: "tiny", messages: MSG, stream: "yes" }, "stream", "invalid_type"],
    [{ model: "tiny", messages: MSG, n: 0 }, "n", "invalid_value"],
    [{ model: "tiny", messages: MSG, n: 100 }, "n", "invalid_value"],
    [{ model: "tiny", messages: MSG, stop: [1] }, "stop", "invalid_type"],
    [{ model: "tiny", messages: MSG, stop: "" }, "stop", "invalid_value"],
    [{ model: "tiny", messages: MSG, seed: "x" }, "seed", "invalid_type"],
    [{ model: "tiny", messages: MSG, stream_options: { include_usage: true } }, "stream_options", "invalid_value"],
    [{ model: "tiny", messages: MSG, top_logprobs: 3 }, "top_logprobs", "invalid_value"],
    [{ model: 5, messages: MSG }, "model", "invalid_type"],
    [{ messages: MSG }, "model", "missing_required_parameter"],
  ];
  for (const [body, param, code] of cases) await expectError(await chat(body), 400, code, param);
  const c = (body) => request(S.port, "POST", "/v1/completions", body);
  await expectError(await c({ model: "tiny", prompt: [0, 99999] }), 400, "invalid_value", "prompt");
  await expectError(await c({ model: "tiny", prompt: {} }), 400, "invalid_type", "prompt");
  await expectError(await c({ model: "tiny", prompt: "x", logprobs: 9 }), 400, "invalid_value", "logprobs");
});

test("unknown model: 404 model_not_found (and the openai client's NotFoundError)", async () => {
  await expectError(await chat({ model: "gpt-4o", messages: MSG }), 404, "model_not_found", "model");
  await expectError(await request(S.port, "GET", "/v1/models/gpt-4o"), 404, "model_not_found");
  const client = new OpenAI({ baseURL: S.url + "/v1", apiKey: "x", maxRetries: 0 });
  try {
    await client.chat.completions.create({ model: "gpt-4o", messages: MSG });
    check(false, "no error thrown");
  } catch (e) {
    check(e instanceof OpenAI.NotFoundError, "NotFoundError: " + e);
    eq(e.code, "model_not_found", "client sees the code");
    eq(e.param, "model", "client sees the param");
  }
});

test("empty messages", async () => {
  await expectError(await chat({ model: "tiny", messages: [] }), 400, "empty_array", "messages");
});

test("a prompt longer than the context, and too many tokens asked", async () => {
  const long = Array.from({ length: 400 }, (_, i) => "word" + i).join(" ");
  const e = await expectError(await chat({ model: "tiny", messages: [{ role: "user", content: long }] }), 400, "context_length_exceeded", "messages");
  check(/256/.test(e.message), "names the context: " + e.message);
  await expectError(await chat({ model: "tiny", messages: MSG, max_tokens: 100000 }), 400, "context_length_exceeded", "max_tokens");
  await expectError(await chat({ model: "tiny", messages: MSG, max_completion_tokens: 300 }), 400, "context_length_exceeded", "max_completion_tokens");
  const client = new OpenAI({ baseURL: S.url + "/v1", apiKey: "x", maxRetries: 0 });
  try {
    await client.chat.completions.create({ model: "tiny", messages: MSG, max_tokens: 100000 });
    check(false, "no error thrown");
  } catch (e2) {
    check(e2 instanceof OpenAI.BadRequestError, "BadRequestError: " + e2);
    eq(e2.code, "context_length_exceeded", "code");
  }
});

test("an oversized body: 413, read and dropped, the connection still answers", async () => {
  const big = JSON.stringify({ model: "tiny", messages: [{ role: "user", content: "x".repeat(1536 * 1024) }] });
  await expectError(await chat(big), 413, "request_too_large");
  const chunked = await new Promise((resolve, reject) => { // no Content-Length: the limit holds while reading
    const http = require("http");
    const req = http.request({ host: "127.0.0.1", port: S.port, method: "POST", path: "/v1/chat/completions", headers: { "Content-Type": "application/json", "Transfer-Encoding": "chunked" } }, (res) => {
      let t = "";
      res.on("data", (d) => (t += d));
      res.on("end", () => resolve({ status: res.statusCode, text: t, json: JSON.parse(t) }));
    });
    req.on("error", reject);
    for (let i = 0; i < 24; i++) req.write("x".repeat(64 * 1024));
    req.end();
  });
  await expectError(chunked, 413, "request_too_large");
  const ok = await chat({ model: "tiny", messages: MSG, max_tokens: 2 });
  eq(ok.status, 200, "served after: " + ok.text);
});

test("API key: missing and wrong are 401; right is served; / and /health are open", async () => {
  const body = { model: "tiny", messages: MSG, max_tokens: 2 };
  await expectError(await request(K.port, "POST", "/v1/chat/completions", body), 401, "missing_api_key");
  await expectError(await request(K.port, "POST", "/v1/chat/completions", body, { Authorization: "Bearer wrong" }), 401, "invalid_api_key");
  await expectError(await request(K.port, "GET", "/v1/models", undefined, { Authorization: "Bearer sekre" }), 401, "invalid_api_key");
  await expectError(await request(K.port, "GET", "/metrics"), 401);
  eq((await request(K.port, "POST", "/v1/chat/completions", body, { Authorization: "Bearer sekret" })).status, 200, "right key");
  eq((await request(K.port, "GET", "/health")).status, 200, "/health");
  eq((await request(K.port, "GET", "/")).status, 200, "/");
  const client = new OpenAI({ baseURL: K.url + "/v1", apiKey: "wrong", maxRetries: 0 });
  try {
    await client.models.list();
    check(false, "no error thrown");
  } catch (e) {
    check(e instanceof OpenAI.AuthenticationError, "AuthenticationError: " + e);
  }
  eq((await new OpenAI({ baseURL: K.url + "/v1", apiKey: "sekret" }).models.list()).data[0].id, "tiny", "client with the key");
});

test("unknown URL 404, wrong method 405, CORS preflight 204", async () => {
  await expectError(await request(S.port, "GET", "/v2/nothing"), 404, "unknown_url");
  await expectError(await request(S.port, "GET", "/v1/chat/completions"), 405, "method_not_allowed");
  await expectError(await request(S.port, "DELETE", "/v1/models"), 405);
  const p = await request(S.port, "OPTIONS", "/v1/chat/completions");
  eq(p.status, 204, "preflight");
  eq(p.headers["access-control-allow-origin"], "*", "CORS");
});

test("after all that, still serving; metrics counted the 4xx", async () => {
  const r = await chat({ model: "tiny", messages: MSG, max_tokens: 3 });
  eq(r.status, 200, "served");
  const m = (await request(S.port, "GET", "/metrics")).text;
  check(+/deepc_http_responses_total\{status="4xx"\} (\d+)/.exec(m)[1] >= 30, "4xx counted");
});

test("stop the servers", async () => {
  await S.stop();
  await K.stop();
  eq(S.proc.exitCode, 0, "exit status");
});

run().then((f) => process.exit(f ? 1 : 0));
