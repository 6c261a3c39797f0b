-- wrk: write the run's latency distribution as JSON to $WRK_PERCENTILES (microseconds), for the plots.
-- Used alone for the bare view and loaded by webhook.lua for the webhook.
local points = {}
for p = 1, 99 do table.insert(points, p) end
for _, p in ipairs({ 99.5, 99.9, 99.99, 100 }) do table.insert(points, p) end

function done(summary, latency, requests)
  local path = os.getenv("WRK_PERCENTILES")
  if not path then return end
  local out = assert(io.open(path, "w"))
  local e = summary.errors
  out:write(string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, "min_us": %d, "mean_us": %.1f, ' ..
    '"stdev_us": %.1f, "max_us": %d, "percentiles": [',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max))
  for i, p in ipairs(points) do
    out:write(string.format('%s[%s, %d]', i > 1 and ", " or "", p, latency:percentile(p)))
  end
  out:write("]}\n")
  out:close()
end
