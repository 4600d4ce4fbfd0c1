-- What every bench/*.lua wrk script reports, loaded by each with dofile: counts of
-- the answers that mean "stored" (success_status, set by the script) and of the
-- others, then one RESULT line that bench/pixel_bench.py reads.
accepted = 0
other = 0

function response(status, headers, body)
  if status == success_status then
    accepted = accepted + 1
  else
    other = other + 1
  end
end

-- The sum over wrk's threads of one of their globals.
function threads_total(name)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get(name)
  end
  return total
end

function done(summary, latency, requests)
  io.write(string.format(
    "RESULT requests=%d accepted=%d other=%d errors=%d p99_us=%d duration_us=%d\n",
    summary.requests, threads_total("accepted"), threads_total("other"),
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout,
    latency:percentile(99), summary.duration))
  if report_more then
    report_more()
  end
end

threads = {}

function setup(thread)
  thread:set("thread_number", #threads + 1)
  table.insert(threads, thread)
end
