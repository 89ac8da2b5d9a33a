-- examples/lab_two_hosts.lua — examples/two_hosts.lua again, written with luaswitch.lab.
--
-- Two hosts (network namespaces whose eth0 is a TAP port) on one switch: pingall, a ping
-- with its round trip, TCP throughput with iperf3, the MAC table, and a drawing of the
-- lab (Graphviz: printed, or written to DRAWING.dot and DRAWING.svg). Everything is
-- removed at the end, on errors and on Ctrl-C.
--
--   build/luaswitch examples/lab_two_hosts.lua [DRAWING.dot]   (as root; ping, iperf3)

local Lab = require "luaswitch.lab"

local lab = Lab.new { name = "two_hosts", verbose = true }
local s1 = lab:switch "s1"
s1:on("learn", function(ev) print(("  learn %s on %s"):format(ev.mac, ev.port.name)) end)
lab:host("h1", { switch = s1, ip = "10.0.0.1/24" })
lab:host("h2", { switch = s1, ip = "10.0.0.2/24" })

local ok, err = pcall(function()
  lab:start()
  local drop = lab:pingall()
  assert(drop == 0, "pingall dropped pings")
  local replied, r = lab.h1:ping(lab.h2, { count = 3, interval = 0.05 })
  assert(replied, r.output)
  print(("h1 -> h2: %d of %d replies, RTT min/avg/max %.3f/%.3f/%.3f ms"):format(r.received, r.sent, r.rtt_min,
    r.rtt_avg, r.rtt_max))
  local gbps = assert(lab:iperf(lab.h1, lab.h2, { seconds = 2 }))
  print(("TCP h1 -> h2 through the switch: %.1f Gbit/s"):format(gbps))
  print("MAC table of s1:")
  for _, e in ipairs(s1:fdb()) do
    print(("  %s  %-3s  age %.1fs  hits %d"):format(e.mac, e.port.name, e.age, e.hits))
  end
  if arg and arg[1] then
    local path, svg = assert(lab:dot(arg[1]))
    print(("drawing: %s%s"):format(path, svg and (", " .. svg) or " (install graphviz for an SVG)"))
  else
    io.write("the lab in Graphviz (pass a path to write it and an SVG):\n", lab:dot())
  end
end)

lab:stop()
if not ok then
  io.stderr:write("lab_two_hosts: ", tostring(err), "\n")
  os.exit(1)
end
