-- wrk script for the difyguard benchmark: one fixed POST request, reused on every
-- keep-alive connection. Everything comes from the environment so that no secret
-- or large body travels in argv:
--   BENCH_BODY_FILE     file holding the request body (read once, sent as is)
--   BENCH_CONTENT_TYPE  Content-Type header (default application/json)
--   BENCH_TOKEN         API key; sent as "Authorization: Bearer <key>" when set
--   BENCH_ACCEPT        optional Accept header
-- No request()/response() callbacks are defined, so wrk builds the request once and
-- never calls into Lua per request (the fast path); wrk itself counts non-2xx replies.

local path = os.getenv("BENCH_BODY_FILE")
if path == nil or path == "" then
  error("BENCH_BODY_FILE is not set")
end
local f = assert(io.open(path, "rb"))
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE") or "application/json"
wrk.headers["Connection"] = "keep-alive"

local token = os.getenv("BENCH_TOKEN")
if token ~= nil and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

local accept = os.getenv("BENCH_ACCEPT")
if accept ~= nil and accept ~= "" then
  wrk.headers["Accept"] = accept
end
