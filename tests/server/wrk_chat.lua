-- wrk_chat.lua — wrk's request for the load test: a short non-streamed chat
-- completion (tests/server/load.test.js).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model": "tiny", "messages": [{"role": "user", "content": "wrk says hi"}], "max_tokens": 4}'
