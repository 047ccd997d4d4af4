-- wrk script: replays pre-signed WeChat callbacks from the file in $SCRM_BENCH_REQUESTS, each
-- thread taking its own share of the lines so that every request is used once.
local threads = {}
local counter = 0

function setup(thread)
    thread:set("id", counter)
    counter = counter + 1
    table.insert(threads, thread)
end

function init(args)
    requests = {}
    local n = tonumber(os.getenv("SCRM_BENCH_THREADS") or "1")
    local i = 0
    for line in io.lines(os.getenv("SCRM_BENCH_REQUESTS")) do
        if i % n == id then
            local tab = line:find("\t", 1, true)
            requests[#requests + 1] = wrk.format("POST", line:sub(1, tab - 1),
                { ["Content-Type"] = "text/xml" }, line:sub(tab + 1))
        end
        i = i + 1
    end
    next_request = 0
    bad = 0
end

function request()
    next_request = next_request + 1
    if next_request > #requests then next_request = 1 end  -- wrapped: duplicates from here on
    return requests[next_request]
end

function response(status, headers, body)
    if status ~= 200 or body ~= "success" and body:sub(1, 5) ~= "<xml>" then bad = bad + 1 end
end

function done(summary, latency, requests_done)
    local b = 0
    for _, t in ipairs(threads) do b = b + (t:get("bad") or 0) end
    io.write(string.format("RESULT rps=%.0f p50_ms=%.2f p99_ms=%.2f requests=%d errors=%d bad=%d\n",
        summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
        latency:percentile(99) / 1000, summary.requests,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status +
        summary.errors.timeout, b))
end
