-- bench/macflood.lua — what a MAC flood costs two known hosts, measured in one run.
--
--   build/luaswitch bench/macflood.lua [runs=5] [frames=500000] [rate=0] [limit]
--
-- A switch (default cap of 8192 MACs, `port` eviction) with four socketpair ports: the
-- known hosts a and b, the flooder x, and c, the flood's destination. Each run measures
-- a -> b at full speed (64-byte unicast frames, sequence-numbered, a sink on b) twice:
-- alone, and while x sends random source MACs at full speed to c (each frame a new MAC:
-- learned, and one of x's own entries evicted). The figure is the known hosts' rate with
-- the flood over their rate without it, as a median over the runs (alternating which comes
-- first); rates are frames received per second between the sink's first and last frame.
-- With `rate` (frames/s), a offers that rate instead of its full speed: the question is then
-- whether the known hosts still get what they ask for while the flood takes the rest.
--
-- `limit` sets x's learn_limit (new source MACs a second; 0: none). With the default, x is
-- held to its budget and the known hosts keep their rate; without a limit the ratio stays
-- near one half while the data plane is the bottleneck: it is one thread that reads its
-- ports in turn, a bounded batch each, so the flooder gets as many frames through as the
-- known host, and each costs more (a learn and an eviction).

local luaswitch = require "luaswitch"
local frame = require "luaswitch.frame"

local runs = tonumber(arg and arg[1]) or 5
local frames = tonumber(arg and arg[2]) or 500000
local rate = tonumber(arg and arg[3]) or 0
local limit = tonumber(arg and arg[4]) -- x's learn_limit (nil: the default)

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  return n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
end

local sw = luaswitch.switch { name = "macflood", evict = "port" }
local ports, eps = {}, {}
for _, n in ipairs { "a", "b", "c", "x" } do
  ports[n] = sw:port { kind = "socketpair", name = n, learn_limit = n == "x" and limit or nil }
  eps[n] = ports[n]:endpoint()
end
for i, n in ipairs { "a", "b", "c" } do
  eps[n]:send(frame.ethernet { src = frame.mac(i), dst = frame.BROADCAST, size = 60 })
end
luaswitch.wait_until(function() return sw:stats().fdb.dynamic == 3 end, 5)
for _, n in ipairs { "a", "b", "c" } do eps[n]:drain() end
local csink = eps.c:start_receiving()
local ab = frame.ethernet { src = frame.mac(1), dst = frame.mac(2), size = 64 }
local xc = frame.ethernet { src = frame.mac(99), dst = frame.mac(3), size = 64 }
local seed = 0
local lost = {} -- known-host frames not received in order (a sink the machine starved
                -- for over 40 ms gets its port declared stalled, which then drops)

-- a -> b, `frames` frames at full speed, with or without the flood; frames/s at b
local function measure(with_flood)
  local sink = eps.b:start_receiving { seq_offset = 14 }
  local flood
  if with_flood then
    seed = seed + 1
    flood = eps.x:start_sending { frame = xc, random_src = true, seed = seed }
  end
  local sender = eps.a:start_sending { frame = ab, count = frames, seq_offset = 14, rate = rate }
  local sent = sender:wait(120).frames
  local got = sink:wait { frames = sent, timeout = 30 }
  local flooded = flood and flood:stop().frames or 0
  luaswitch.dispatch(0)
  lost[#lost + 1] = sent - got.in_order
  return got.frames / got.seconds, flooded / got.seconds
end

print(("macflood: a -> b %d frames of 64 bytes per measurement (%s), %d runs, medians")
  :format(frames, rate > 0 and ("offered at %d frames/s"):format(rate) or "full speed", runs))
local alone, flooded, ratio, frate = {}, {}, {}, {}
for r = 1, runs do
  local x, y, f
  if r % 2 == 1 then
    x = measure(false); y, f = measure(true)
  else
    y, f = measure(true); x = measure(false)
  end
  alone[r], flooded[r], ratio[r], frate[r] = x, y, y / x, f
  print(("run %d: alone %8.0f frames/s, with the flood %8.0f frames/s (%.2f x), flood %8.0f new MACs/s")
    :format(r, x, y, y / x, f))
end
local st = sw:stats().fdb
print(("median: alone %8.0f frames/s, with the flood %8.0f frames/s, ratio %.2f; flood %8.0f new MACs/s")
  :format(median(alone), median(flooded), median(ratio), median(frate)))
local where = {}
for _, e in ipairs(sw:fdb()) do where[e.mac] = e.port.name end
print(("table: %d of %d entries, %d learned, %d evicted; a and b kept theirs: %s")
  :format(st.dynamic, st.max, st.learned, st.evicted,
    tostring(where[frame.mac(1)] == "a" and where[frame.mac(2)] == "b")))
local total = 0
for _, l in ipairs(lost) do total = total + l end
print(("known-host frames lost: %d of %d"):format(total, 2 * runs * frames))
csink:stop()
for _, ep in pairs(eps) do ep:close() end
sw:close()
