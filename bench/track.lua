-- wrk script for /track: every visit to the same tracking link with a sub id of its
-- own, so no two URLs repeat (and each 302 must leave exactly one click behind).
-- Arguments: <tracking link id> <run tag>
local threads = {}

function setup(thread)
  thread:set("thread_number", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  link_id = args[1]
  run_tag = args[2]
  counter = 0
  accepted = 0
  other = 0
end

function request()
  counter = counter + 1
  return wrk.format("GET", "/track/" .. link_id .. "?s1=" .. run_tag .. "-" .. thread_number
    .. "-" .. counter .. "&s2=bench")
end

function response(status, headers, body)
  if status == 302 then
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
