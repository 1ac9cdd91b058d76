-- bench/track.lua: wrk script for bench/track. Counts the answers each
-- thread read by class, so the benchmark can check that every answered
-- request's event was stored. Prints "answered_2xx_3xx N" and
-- "other_answers N" at the end.
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   ok = 0
   other = 0
end

function response(status, headers, body)
   if status >= 200 and status < 400 then
      ok = ok + 1
   else
      other = other + 1
   end
end

function done(summary, latency, requests)
   local o, b = 0, 0
   for _, t in ipairs(threads) do
      o = o + t:get("ok")
      b = b + t:get("other")
   end
   io.write(string.format("answered_2xx_3xx %d\nother_answers %d\n", o, b))
end
