-- wrk script: GET recommendations of a random user per request and print a JSON summary.
-- USERS: users are PREFIX1..PREFIX<USERS> with the number zero-padded to WIDTH digits
-- (defaults: 2000, "user-", 4: the ids `recstream simulate` uses); COUNT: list length (10).
local users = tonumber(os.getenv("USERS") or "2000")
local prefix = os.getenv("PREFIX") or "user-"
local width = tonumber(os.getenv("WIDTH") or "4")
local count = os.getenv("COUNT") or "10"
local fmt = "/v1/users/" .. prefix .. "%0" .. width .. "d/recommendations?count=" .. count

-- API_KEY: sent as "Authorization: Bearer" (auth is on by default in recstream)
if (os.getenv("API_KEY") or "") ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. os.getenv("API_KEY")
end

local threads = 0
setup = function(thread)
    threads = threads + 1
    thread:set("tid", threads)
end

init = function(args)
    -- a different random sequence per thread (and per run)
    math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
end

request = function()
    return wrk.format("GET", string.format(fmt, math.random(1, users)))
end

done = function(summary, latency, requests)
    local non2xx = summary.errors.status or 0
    io.write(string.format(
        'WRKJSON {"requests":%d,"duration_us":%d,"rps":%.1f,"mean_us":%.1f,"p50_us":%d,"p90_us":%d,' ..
        '"p99_us":%d,"p999_us":%d,"max_us":%d,"bytes":%d,"non2xx":%d,"socket_errors":%d}\n',
        summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
        latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency:percentile(99.9), latency.max, summary.bytes, non2xx,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
