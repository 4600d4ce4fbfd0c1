-- wrk script: every request a real click id and a fresh transaction id, so no two
-- URLs repeat (fixed URLs hit Litestar's caches and overstate throughput).
-- Arguments: <click ids file> <run tag>
local threads = {}

function setup(thread)
  thread:set("thread_number", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  clicks = {}
  for line in io.lines(args[1]) do
    clicks[#clicks + 1] = line
  end
  run_tag = args[2]
  counter = 0
  accepted = 0
  other = 0
end

function request()
  counter = counter + 1
  local click_id = clicks[(counter % #clicks) + 1]
  return wrk.format("GET", "/convert/" .. click_id
    .. "?type=deposit&amount=10.00&currency=eur&player_id=bench"
    .. "&transaction_id=" .. run_tag .. "-" .. thread_number .. "-" .. counter)
end

function response(status, headers, body)
  if status == 202 then
    accepted = accepted + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local total_accepted, total_other = 0, 0
  for _, thread in ipairs(threads) do
    total_accepted = total_accepted + thread:get("accepted")
    total_other = total_other + thread:get("other")
  end
  io.write(string.format(
    "RESULT requests=%d accepted=%d other=%d errors=%d p99_us=%d duration_us=%d\n",
    summary.requests, total_accepted, total_other,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout,
    latency:percentile(99), summary.duration))
end
