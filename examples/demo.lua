-- examples/demo.lua — three hosts on one switch, talking.
--
-- Each host is a socketpair port whose far end (an endpoint) stands in for a VM. The
-- hosts announce themselves with a broadcast (as ARP would), the switch learns where
-- they are, then alice streams 100,000 frames to bob at full speed from a background
-- thread while carol listens: she must see none of them (unicast after learning).
--
--   luaswitch examples/demo.lua        (or: lua5.4 examples/demo.lua once installed)

local luaswitch = require "luaswitch"
local frame = require "luaswitch.frame"

local sw = luaswitch.switch { name = "demo", aging = 300 }
sw:on("learn", function(ev)
  print(("  learn  %s  on port %-5s (vlan %d)"):format(ev.mac, ev.port.name, ev.vlan))
end)
sw:on("move", function(ev)
  print(("  move   %s  %s -> %s"):format(ev.mac, ev.from.name, ev.to.name))
end)

local hosts = {}
for i, name in ipairs { "alice", "bob", "carol" } do
  local port = sw:port { kind = "socketpair", name = name }
  hosts[name] = { mac = frame.mac(i), port = port, ep = port:endpoint() }
end
print(sw)

print("hosts announce themselves (broadcast):")
for _, name in ipairs { "alice", "bob", "carol" } do
  local h = hosts[name]
  h.ep:send(frame.ethernet { dst = frame.BROADCAST, src = h.mac, payload = "hello from " .. name,
                             size = 60 })
end
-- everyone else hears each broadcast
for name, h in pairs(hosts) do
  local n = 0
  while h.ep:recv(0.2) do n = n + 1 end
  assert(n == 2, name .. " should have heard 2 broadcasts, got " .. n)
end
luaswitch.dispatch(0.1) -- run the learn handlers

print("alice -> bob: 100000 frames of 64 bytes at full speed")
local alice, bob, carol = hosts.alice, hosts.bob, hosts.carol
local sink = bob.ep:start_receiving { seq_offset = 14 }
local t0 = luaswitch.monotime()
local sender = alice.ep:start_sending {
  frame = frame.ethernet { dst = bob.mac, src = alice.mac, size = 64 },
  count = 100000, seq_offset = 14,
}
sender:wait { timeout = 30 }
local got = sink:wait { frames = 100000, timeout = 10 }
local secs = luaswitch.monotime() - t0
print(("  bob received %d frames in order (%d lost, %d reordered), %.0f frames/s"):format(
  got.in_order, got.gaps, got.reordered, got.frames / secs))
print(("  carol received %d of them"):format(carol.ep:drain()))

print("MAC table:")
for _, e in ipairs(sw:fdb()) do
  print(("  %s  %-5s  vlan %d  age %.2fs  hits %d"):format(e.mac, e.port.name, e.vlan, e.age, e.hits))
end

print("port counters:")
print("  port   rx_frames  tx_frames  drops")
for _, p in ipairs(sw:ports()) do
  local st = p:stats()
  local drops = 0
  for _, v in pairs(st.drops) do drops = drops + v end
  print(("  %-5s  %9d  %9d  %5d"):format(p.name, st.rx_frames, st.tx_frames, drops))
end
local st = sw:stats()
print(("switch: %d unicast, %d flooded, %d MACs learned"):format(st.unicast, st.flooded, st.fdb.learned))

for _, h in pairs(hosts) do h.ep:close() end
sw:close() -- nothing left open: `luaswitch` exits instead of serving
