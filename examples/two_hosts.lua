-- examples/two_hosts.lua — two hosts with real kernel network stacks on one switch.
--
-- Each host is a network namespace whose eth0 is a TAP port of the switch. They ping
-- each other, measure TCP throughput through the switch with iperf3, and the MAC table
-- shows where each one lives. Everything is removed at the end (and on Ctrl-C).
--
--   build/luaswitch examples/two_hosts.lua        (as root; iperf3 and ping installed)

local luaswitch = require "luaswitch"
local netns = require "luaswitch.netns"

local tag = ("ex%d"):format(math.random(1000, 9999)) -- unique namespace names
local sw = luaswitch.switch { name = "lab" }
sw:on("learn", function(ev) print(("  learn %s on %s"):format(ev.mac, ev.port.name)) end)
sw:on("port", function(ev) print(("  port %s %s (%s)"):format(ev.port.name, ev.state, ev.reason)) end)

local hosts = {}
local ok, err = pcall(function()
  for i, name in ipairs { "h1", "h2" } do
    local ns = assert(netns.create(tag .. name))
    hosts[name] = ns
    -- create_netns would make the namespace too; here we keep it to run commands in it
    assert(sw:port { kind = "tap", name = name, ifname = "eth0", netns = ns.name,
                     addresses = { ("10.0.0.%d/24"):format(i) } })
  end
  print("h1 pings h2:")
  print((hosts.h1:check("ping -c 3 -i 0.2 -W 2 10.0.0.2"):gsub("\n+$", "")))
  luaswitch.dispatch(0.1)

  print("TCP from h1 to h2 through the switch (iperf3, 3 s):")
  local server = hosts.h2:spawn("iperf3 -s -1")
  luaswitch.wait_until(function()
    local _, rc = hosts.h2:run("ss -ltn | grep -q ':5201 '")
    return rc == 0
  end, 5)
  local out = hosts.h1:check("iperf3 -c 10.0.0.2 -t 3 -f g")
  print("  " .. (out:match("([%d.]+ Gbits/sec)%s+receiver") or "?") .. " received")
  server:wait(2)

  print("MAC table:")
  for _, e in ipairs(sw:fdb()) do
    print(("  %s  %-3s  age %.1fs  hits %d"):format(e.mac, e.port.name, e.age, e.hits))
  end
  for _, p in ipairs(sw:ports()) do
    local st = p:stats()
    print(("port %s: %d frames in, %d out, offloads %s"):format(p.name, st.rx_frames, st.tx_frames,
      tostring(p:info().offloads)))
  end
end)

sw:close()
for _, ns in pairs(hosts) do ns:close() end
if not ok then
  io.stderr:write("two_hosts: ", tostring(err), "\n")
  os.exit(1)
end
