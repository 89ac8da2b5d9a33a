-- examples/lab_line.lua — three switches in a line, one link impaired.
--
-- s1 -- s2 -- s3, a host on each; the s2-s3 link delays frames by 20 ms each way (an
-- impairment of its patch ports: no tc, no netem). Then:
--   1. pingall, and the round trips: h1 -> h2 stays well under a millisecond, h1 -> h3
--      takes about 40 ms (20 ms each way).
--   2. the link is impaired per direction, live: 50 ms from s3 towards s2 only, so the
--      round trip becomes about 70 ms; then 10% loss (seeded) from s2 towards s3.
--   3. the impairment is removed: the round trip falls back under a millisecond.
-- Everything is removed at the end, on errors and on Ctrl-C.
--
--   build/luaswitch examples/lab_line.lua        (as root; ping installed)

local Lab = require "luaswitch.lab"

local lab = Lab.new { name = "line", verbose = true }
local s1, s2, s3 = lab:switch "s1", lab:switch "s2", lab:switch "s3"
lab:link(s1, s2)
local slow = lab:link(s2, s3, { delay = 0.02 })
for i, sw in ipairs { s1, s2, s3 } do lab:host("h" .. i, { switch = sw, ip = ("10.0.0.%d/24"):format(i) }) end

local function rtt(from, to, count)
  local _, r = lab[from]:ping(lab[to], { count = count or 5, interval = 0.05, timeout = 1 })
  print(("  %s -> %s: %d of %d replies, RTT avg %.2f ms (min %.2f, max %.2f)"):format(from, to, r.received, r.sent,
    r.rtt_avg or 0 / 0, r.rtt_min or 0 / 0, r.rtt_max or 0 / 0))
  return r
end

local ok, err = pcall(function()
  lab:start()
  print("1. pingall and round trips (s2-s3 delays 20 ms each way)")
  assert(lab:pingall() == 0, "pingall dropped pings")
  local near, far = rtt("h1", "h2"), rtt("h1", "h3")
  -- the fastest round trip: the delays are its floor, and it is the one a busy machine
  -- (a late ping reply) does not stretch
  assert(near.rtt_min < 10 and far.rtt_min >= 40 and far.rtt_min < 60, "unexpected round trips")

  print("2. per direction, live: 50 ms from s3 towards s2 (and 20 ms the other way)")
  slow:impair(s3, { delay = 0.05 })
  local r = rtt("h1", "h3")
  assert(r.rtt_min >= 70 and r.rtt_min < 90, "unexpected round trip")
  print("  and 10% loss from s2 towards s3 (seeded), replacing its 20 ms delay")
  slow:impair(s2, { loss = 0.1, seed = 3 })
  r = rtt("h1", "h3", 30)
  local st = slow.ports[s2]:impair().out.stats
  print(("  the s2 end of the link lost %d frames"):format(st.lost))

  print("3. impairments removed")
  slow:impair("both", nil)
  r = rtt("h1", "h3")
  assert(r.received == r.sent and r.rtt_min < 10, "the link is still impaired")
end)

lab:stop()
if not ok then
  io.stderr:write("lab_line: ", tostring(err), "\n")
  os.exit(1)
end
