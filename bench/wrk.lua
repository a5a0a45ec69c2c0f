-- wrk script shared by every scenario. With BENCH_TOKENS set, each request carries the next
-- token of that file (one token a line, taken in turn from BENCH_OFFSET, where the previous
-- run of the scenario stopped: one long cycle through a pool larger than any cache never hits
-- it); without it, wrk sends its static request (no Lua per request). done() prints the
-- summary as one JSON line for the driver.

local tokens = {}
local path = os.getenv("BENCH_TOKENS")
if path and path ~= "" then
  for line in io.lines(path) do
    tokens[#tokens + 1] = "Bearer " .. line
  end
  local count = #tokens
  local next_token = (tonumber(os.getenv("BENCH_OFFSET")) or 0) % count
  local headers = {}
  request = function()
    next_token = next_token % count + 1
    headers["Authorization"] = tokens[next_token]
    return wrk.format("GET", "/", headers)
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"mean_us":%.1f,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
