-- examples/vlan_lab.lua — VLANs, a filter and impairments on kernel hosts, set live.
--
-- Four hosts (network namespaces, eth0 a TAP port) share one subnet, 10.0.0.0/24, on one
-- VLAN-aware switch: h1 and h2 in VLAN 10, h3 and h4 in VLAN 20. Then:
--   1. VLANs: h1 reaches h2 but not h3, though they share the subnet.
--   2. A filter: an egress rule on h2's port drops ICMP echo requests; h1's pings fail and
--      the rule counts them; TCP still goes through; the rule is removed.
--   3. Impairments on h4's port: 40 ms delay and 20% loss (seeded), then a 5 Mbit/s rate
--      limit under iperf3, then back to zero at once.
--   4. sw:explain() of a frame from h1 to h3: why it does not get there.
-- Everything is removed at the end (and on errors).
--
--   build/luaswitch examples/vlan_lab.lua        (as root; ping, iperf3 installed)

local luaswitch = require "luaswitch"
local netns = require "luaswitch.netns"

local tag = ("vl%d"):format(math.random(1000, 9999)) -- unique namespace names
local sw = luaswitch.switch { name = "vlans", vlan_aware = true }
local hosts, ports = {}, {}

local function ping(from, to, count)
  local out = hosts[from]:run(("ping -n -q -c %d -i 0.1 -W 1 %s"):format(count, to))
  local rx = out:match("(%d+) received") or "?"
  local rtt = out:match("= [%d.]+/([%d.]+)/") or "-"
  return ("%s -> %s: %s of %d received, avg RTT %s ms"):format(from, to, rx, count, rtt)
end

local function iperf(from, to_addr, to)
  local server = hosts[to]:spawn("iperf3 -s -1")
  luaswitch.wait_until(function()
    local _, rc = hosts[to]:run("ss -ltn | grep -q ':5201 '")
    return rc == 0
  end, 5)
  local out = hosts[from]:check(("iperf3 -c %s -t 3 -f m"):format(to_addr))
  server:wait(5)
  return out:match("([%d.]+) Mbits/sec%s+receiver") or "?"
end

local ok, err = pcall(function()
  for i, vlan in ipairs { 10, 10, 20, 20 } do
    local name = "h" .. i
    hosts[name] = assert(netns.create(tag .. name))
    ports[name] = assert(sw:port { kind = "tap", name = name, ifname = "eth0", netns = hosts[name].name,
                                   addresses = { ("10.0.0.%d/24"):format(i) }, vlan = vlan })
  end

  print("1. VLANs (h1, h2 in VLAN 10; h3, h4 in VLAN 20; one subnet)")
  print("  " .. ping("h1", "10.0.0.2", 3))
  print("  " .. ping("h1", "10.0.0.3", 3))
  print("  " .. ping("h3", "10.0.0.4", 3))

  print("2. filter: h2's port drops ICMP echo requests on the way out")
  ports.h2:filter("out", { { match = "icmp[icmptype] = icmp-echo", action = "drop" } })
  print("  " .. ping("h1", "10.0.0.2", 5))
  print(("  rule matched %d frames"):format(ports.h2:filter("out")[1].matches))
  print(("  TCP h1 -> h2 meanwhile: %s Mbit/s"):format(iperf("h1", "10.0.0.2", "h2")))
  ports.h2:filter("out", {})
  print("  rule removed: " .. ping("h1", "10.0.0.2", 3))

  print("3. impairments on h4's port (towards h4)")
  ports.h4:impair { delay = 0.04, loss = 0.2, seed = 7 }
  print("  40 ms, 20% loss: " .. ping("h3", "10.0.0.4", 20))
  ports.h4:impair { rate = "5mbit", limit = 32 }
  print(("  5 Mbit/s limit: TCP h3 -> h4 %s Mbit/s"):format(iperf("h3", "10.0.0.4", "h4")))
  local st = ports.h4:impair().out.stats
  print(("  impairment counters: lost %d, delayed %d, queue_full %d"):format(st.lost, st.delayed, st.queue_full))
  ports.h4:impair(nil)
  print("  reset: " .. ping("h3", "10.0.0.4", 10))
  print(("  TCP h3 -> h4 after the reset: %s Mbit/s"):format(iperf("h3", "10.0.0.4", "h4")))

  print("4. explain: a frame from h1 to h3's MAC")
  local mac = hosts.h3:check("cat /sys/class/net/eth0/address"):gsub("%s+", "")
  local h1mac = hosts.h1:check("cat /sys/class/net/eth0/address"):gsub("%s+", "")
  local frame = require("luaswitch.frame").ethernet { dst = mac, src = h1mac, type = 0x0800, size = 60 }
  local x = sw:explain(frame, ports.h1)
  print(("  verdict %s, VLAN %d (%s), lookup %s, %s"):format(x.verdict, x.vlan, x.vlan_reason, x.lookup,
    x.decision or "-"))
  for _, p in ipairs(x.ports) do
    print(("    %-3s %s"):format(p.port.name, p.sent and "sent" or p.why))
  end
end)

sw:close()
for _, ns in pairs(hosts) do ns:close() end
if not ok then
  io.stderr:write("vlan_lab: ", tostring(err), "\n")
  os.exit(1)
end
