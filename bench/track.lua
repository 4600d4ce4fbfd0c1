-- wrk script for /track: every visit to the same tracking link with a sub id of its
-- own, so no two URLs repeat (and each 302 must leave exactly one click behind).
-- Arguments: <tracking link id> <run tag>
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "wrk_results.lua")
success_status = 302

function init(args)
  link_id = args[1]
  run_tag = args[2]
  counter = 0
end

function request()
  counter = counter + 1
  return wrk.format("GET", "/track/" .. link_id .. "?s1=" .. run_tag .. "-" .. thread_number
    .. "-" .. counter .. "&s2=bench")
end
