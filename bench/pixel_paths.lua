-- wrk script for pre-built request paths (signed fires, which Lua cannot sign):
-- thread k of n sends lines k, k+n, k+2n, ... of the file once each, so no two
-- requests repeat; a thread that runs out wraps around and counts the repeats.
-- bench/pixel_bench.py runs wrk with 2 threads. Arguments: <paths file>
local threads = {}

function setup(thread)
  thread:set("thread_number", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  paths = {}
  for line in io.lines(args[1]) do
    paths[#paths + 1] = line
  end
  counter = 0
  accepted = 0
  other = 0
  wrapped = 0
end

function request()
  local index = thread_number + counter * 2
  counter = counter + 1
  if index > #paths then
    wrapped = wrapped + 1
    index = ((index - 1) % #paths) + 1
  end
  return wrk.format("GET", paths[index])
end

function response(status, headers, body)
  if status == 202 then
    accepted = accepted + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local total_accepted, total_other, total_wrapped = 0, 0, 0
  for _, thread in ipairs(threads) do
    total_accepted = total_accepted + thread:get("accepted")
    total_other = total_other + thread:get("other")
    total_wrapped = total_wrapped + thread:get("wrapped")
  end
  io.write(string.format(
    "RESULT requests=%d accepted=%d other=%d errors=%d p99_us=%d duration_us=%d\n",
    summary.requests, total_accepted, total_other,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout,
    latency:percentile(99), summary.duration))
  io.write(string.format("WRAPPED %d\n", total_wrapped))
end
