-- wrk script: every request a real click id and a fresh transaction id, so no two
-- URLs repeat (fixed URLs hit Litestar's caches and overstate throughput).
-- Arguments: <click ids file> <run tag> [invalid]; with "invalid" every fire carries
-- amount=NaN and is answered 422 (a stream of rejected fires).
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "wrk_results.lua")
success_status = 202

function init(args)
  clicks = {}
  for line in io.lines(args[1]) do
    clicks[#clicks + 1] = line
  end
  run_tag = args[2]
  amount = "10.00"
  if args[3] == "invalid" then
    amount = "NaN"
    success_status = 422
  end
  counter = 0
end

function request()
  counter = counter + 1
  local click_id = clicks[(counter % #clicks) + 1]
  return wrk.format("GET", "/convert/" .. click_id
    .. "?type=deposit&amount=" .. amount .. "&currency=eur&player_id=bench"
    .. "&transaction_id=" .. run_tag .. "-" .. thread_number .. "-" .. counter)
end
