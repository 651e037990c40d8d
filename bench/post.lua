-- wrk script: POSTs pre-built bodies in rotation and prints a JSON summary line.
-- BODIES_FILE: NDJSON-free file with one request body per line; CONTENT_TYPE env sets the type.
local bodies = {}
local idx = 0
local path = os.getenv("BODIES_FILE")
for line in io.lines(path) do
    bodies[#bodies + 1] = line
end
wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("CONTENT_TYPE") or "application/json"
-- API_KEY: sent as "Authorization: Bearer" (auth is on by default in recstream)
if (os.getenv("API_KEY") or "") ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. os.getenv("API_KEY")
end

request = function()
    idx = idx % #bodies + 1
    return wrk.format(nil, nil, nil, bodies[idx])
end

local codes = {}
response = function(status, headers, body)
    codes[status] = (codes[status] or 0) + 1
end

done = function(summary, latency, requests)
    local non2xx = summary.errors.status or 0
    io.write(string.format(
        'WRKJSON {"requests":%d,"duration_us":%d,"rps":%.1f,"p50_us":%d,"p99_us":%d,"non2xx":%d,"socket_errors":%d}\n',
        summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
        latency:percentile(50), latency:percentile(99), non2xx,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
