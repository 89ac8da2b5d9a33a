-- examples/policy_harness.lua — two policy hooks written in Lua, checked frame by frame
-- with luaswitch.test.
--
-- The switch has three hosts: h1 (10.0.0.1) and h2 (10.0.0.2), and a guest port. Two
-- policies run on it, both as Lua hooks the data plane calls out to:
--   1. ARP inspection: every ARP frame is punted to Lua, which re-injects it only if its
--      sender's IP and MAC are a known binding (a guest claiming 10.0.0.1 goes nowhere).
--   2. Port security on the guest port: learning admission lets one MAC in; frames from any
--      other MAC on that port are dropped.
-- The checks send frames from the hosts' side and expect them (or their absence) on the
-- other ports within a deadline. A failing check prints what arrived instead, field by
-- field, and where the pcap files of every port are; the script then exits with status 1.
--
--   build/luaswitch examples/policy_harness.lua [capture_dir]
--
-- No root needed: the hosts are socketpair ports whose far ends the harness holds.

local luaswitch = require "luaswitch"
local frame = require "luaswitch.frame"
local T = require "luaswitch.test"

local H1, H2 = frame.mac(1), frame.mac(2)
local GUEST, INTRUDER = frame.mac(0x10), frame.mac(0x11)

local h = T.harness { switch = { name = "policy", aging = 60 }, capture_dir = (...) }
local sw = h.switch

-- ---- the policies -----------------------------------------------------------------------

-- 1. ARP inspection: IP -> MAC bindings (as DHCP snooping would have learned them)
local bindings = { ["10.0.0.1"] = H1, ["10.0.0.2"] = H2 }
local inspected = { passed = 0, dropped = 0 }

sw:on("punt", function(ev)
  local p = frame.parse(ev.frame)
  local a = p and p.arp
  if a and a.sender_ip and bindings[a.sender_ip] == a.sender_mac and p.src == a.sender_mac then
    inspected.passed = inspected.passed + 1
    ev.port:inject(ev.frame) -- forwarded as if just received, past the punt rule
  else
    inspected.dropped = inspected.dropped + 1
  end
end)

-- 2. port security: the first MAC seen on a port with admission set is learned, others refused
sw:admission(luaswitch.admit_first(1))
local refused = {}
sw:on("refuse", function(ev) refused[#refused + 1] = ev.mac end)

local h1, h2 = h:port "h1", h:port "h2"
local guest = h:port { name = "guest", admission = "drop" }
for _, vp in ipairs(h.ports) do vp.port:filter("in", { { match = "arp", action = "punt" } }) end

-- ---- the checks ---------------------------------------------------------------------------

local function arp_request(mac, sender, target)
  return frame.arp { op = "request", src_mac = mac, sender_ip = sender, target_ip = target }
end

local function udp(src_mac, dst_mac, src, dst)
  return frame.udp { src_mac = src_mac, dst_mac = dst_mac, src = src, dst = dst, sport = 5000, dport = 7,
    payload = "policy" }
end

local checks = 0
local function check(what, fn)
  fn()
  checks = checks + 1
  print(("ok %d - %s"):format(checks, what))
end

local ok, err = pcall(function()
  check("h1's ARP request (a known binding) passes inspection and is flooded", function()
    h1:send(arp_request(H1, "10.0.0.1", "10.0.0.2"))
    h2:expect { type = "arp", dst = frame.BROADCAST, arp = { op = "request", sender_ip = "10.0.0.1", target_ip = "10.0.0.2" } }
    guest:expect "arp and ether src 02:00:00:00:00:01"
  end)

  check("h2's ARP reply goes to h1 only", function()
    h2:send(frame.arp { op = "reply", src_mac = H2, dst_mac = H1, sender_ip = "10.0.0.2", target_mac = H1,
      target_ip = "10.0.0.1" })
    h1:expect { type = "arp", dst = H1, arp = { op = "reply", sender_mac = H2 } }
    guest:expect_none()
  end)

  check("the guest's first MAC is admitted: once learned, its traffic reaches h1", function()
    guest:send(udp(GUEST, H1, "10.0.0.16", "10.0.0.1")) -- held until the policy answers ("drop")
    assert(h:wait(function()
      for _, e in ipairs(sw:fdb()) do if e.mac == GUEST then return true end end
    end, 2), "the guest's MAC was not learned")
    guest:send(udp(GUEST, H1, "10.0.0.16", "10.0.0.1"))
    h1:expect { type = "udp", src = GUEST, ip = { src = "10.0.0.16" } }
    h2:expect_none()
  end)

  check("a second MAC on the guest port is refused, and its frames dropped", function()
    guest:send(udp(INTRUDER, H1, "10.0.0.17", "10.0.0.1"))
    assert(h:wait(function() return #refused == 1 end, 2), "no refuse event")
    guest:send(udp(INTRUDER, H1, "10.0.0.17", "10.0.0.1"))
    h1:expect_none({ src = INTRUDER }, { within = 0.1 })
    assert(refused[1] == INTRUDER, refused[1])
  end)

  check("a guest claiming h1's IP (ARP spoofing) reaches nobody", function()
    guest:send(arp_request(GUEST, "10.0.0.1", "10.0.0.2"))
    h2:expect_none("arp", { within = 0.1 })
    h1:expect_none "arp"
    assert(inspected.dropped == 1, "inspected.dropped = " .. inspected.dropped)
  end)

  check("traffic that is not ARP is not punted", function()
    h2:send(udp(H2, H1, "10.0.0.2", "10.0.0.1"))
    h1:expect "udp dst port 7 and src host 10.0.0.2"
    assert(h2.port:filter("in")[1].matches == 1, "h2's punt rule matched more than its ARP reply")
  end)
end)

print(("ARP inspection: %d passed, %d dropped; port security: %d refused"):format(inspected.passed,
  inspected.dropped, #refused))
h:close()
if not ok then
  io.stderr:write("policy_harness: ", tostring(err), "\n")
  os.exit(1)
end
print(("policy_harness: %d checks passed"):format(checks))
