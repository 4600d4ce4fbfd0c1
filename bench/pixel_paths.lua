-- wrk script for pre-built request paths (signed fires, which Lua cannot sign):
-- thread k of n sends lines k, k+n, k+2n, ... of the file once each, so no two
-- requests repeat; a thread that runs out wraps around and counts the repeats.
-- bench/pixel_bench.py runs wrk with 2 threads. Arguments: <paths file>
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "wrk_results.lua")
success_status = 202

function init(args)
  paths = {}
  for line in io.lines(args[1]) do
    paths[#paths + 1] = line
  end
  counter = 0
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

function report_more()
  io.write(string.format("WRAPPED %d\n", threads_total("wrapped")))
end
