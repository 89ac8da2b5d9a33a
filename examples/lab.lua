-- examples/lab.lua — a small lab to look at and change live.
--
-- Three hosts (socketpair ports with endpoints standing in for VMs) on switch "lab";
-- alice streams frames to bob in the background at 20,000 frames/s. The objects a person
-- (or a control-socket client) wants are globals: `sw`, `hosts`, `traffic`, `sink`.
--
--   luaswitch -i examples/lab.lua                          a prompt on the lab
--   luaswitch --control /tmp/lab.sock examples/lab.lua     served; then, elsewhere:
--   luaswitch attach /tmp/lab.sock                         a prompt on it
--   luaswitch ctl /tmp/lab.sock 'stats()'                  one request, JSON out

luaswitch = require "luaswitch"
local frame = require "luaswitch.frame"

sw = luaswitch.switch { name = "lab", aging = 300 }
sw:on("learn", function(ev) print(("learned %s on %s"):format(ev.mac, ev.port.name)) end)

hosts = {}
for i, name in ipairs { "alice", "bob", "carol" } do
  hosts[name] = sw:port({ kind = "socketpair", name = name }):endpoint()
  hosts[name]:send(frame.ethernet { src = frame.mac(i), dst = frame.BROADCAST, size = 60 })
end
-- the three announcements learned (and their events printed) before the script goes on,
-- so the prompt (or the first request) sees all three in the table
assert(luaswitch.wait_until(function() return #sw:fdb() == 3 end, 5), "the hosts were not learned")

--- alice -> bob, sequence-numbered, until stopped (`traffic:stop()`, `sink:stop()`)
sink = hosts.bob:start_receiving { seq_offset = 14 }
traffic = hosts.alice:start_sending {
  frame = frame.ethernet { src = frame.mac(1), dst = frame.mac(2), size = 64 },
  rate = 20000, seq_offset = 14,
}

--- What bob got so far: frames, in order, missing.
function received()
  local p = sink:progress()
  return ("bob received %d frames"):format(p)
end
