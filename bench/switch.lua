-- bench/switch.lua — the luaswitch subject of bench/lsbench.c: one switch, two unix
-- datagram ports with fixed peers (the generator and the sink). Run by the harness as
-- `luaswitch bench/switch.lua DIR [MODE]`; it serves until SIGTERM.
--
-- MODE (default "plain") is the policy configured on top of the plain switch:
--   plain         nothing: the reference of `lsbench --policy`
--   rules16       16 ingress rules on each port; the first 15 never match the benchmark
--                 traffic, the last allows it, so every frame runs all 16 BPF programs
--   trunk_access  VLAN-aware: port a (generator) access in VLAN 10, port b (sink) a
--                 trunk carrying VLAN 10 tagged: every frame gets a tag pushed
--   access_trunk  the reverse: a trunk (the generator sends frames tagged 10), b access
--                 in VLAN 10: every frame has its tag popped
--   impair0       every impairment configured, at zero, both directions on both ports
--
-- Each policy mode reads its configuration back and asks sw:explain what becomes of the frame
-- the generator sends, and raises (the switch exits, the harness reports it) if anything
-- is not as intended: the benchmark must not silently measure something else.
local luaswitch = require "luaswitch"
local frame = require "luaswitch.frame"

local dir = assert(arg[1], "usage: luaswitch bench/switch.lua DIR [MODE]")
local mode = arg[2] or "plain"
local modes = {
  plain = true, rules16 = true, trunk_access = true, access_trunk = true, impair0 = true,
}
if not modes[mode] then error("bench/switch.lua: unknown mode '" .. mode .. "'") end

local vlan_aware = mode == "trunk_access" or mode == "access_trunk"
local sw = luaswitch.switch { name = "bench", vlan_aware = vlan_aware }
local a = assert(sw:port { kind = "unix", name = "a", path = dir .. "/a.sock",
                           peer = dir .. "/gen.sock" })
local b = assert(sw:port { kind = "unix", name = "b", path = dir .. "/b.sock",
                           peer = dir .. "/sink.sock" })

local function check(cond, fmt, ...)
  if not cond then error(("bench/switch.lua %s: " .. fmt):format(mode, ...), 2) end
end

-- What the generator sends (bench/lsbench.c make_frame): 02:..:01 -> 02:..:02, type
-- 0x88b5, zero payload; tagged with VLAN 10 when it sends into a trunk.
local function bench_frame(tagged)
  return frame.ethernet { dst = frame.mac(2), src = frame.mac(1), vlan = tagged and 10 or nil,
                          size = 64 }
end

-- Realistic rules an operator might have, none matching the benchmark traffic, then one
-- that allows everything.
local RULES = {
  "arp", "rarp", "ip", "ip6", "icmp", "icmp6", "udp port 53", "udp port 67 or udp port 68",
  "tcp port 22", "tcp port 80 or tcp port 443", "vlan 100", "ether proto 0x88cc",
  "ether host 02:aa:bb:cc:dd:ee", "ether src 02:00:00:00:00:99",
  "ether multicast and not ether broadcast",
}

if mode == "rules16" then
  local rules = {}
  for i, m in ipairs(RULES) do rules[i] = { match = m, action = "count" } end
  rules[#rules + 1] = { action = "allow" }
  check(#rules == 16, "%d rules, 16 expected", #rules)
  for _, p in ipairs { a, b } do
    p:filter("in", rules)
    local got = p:filter("in")
    check(#got == 16, "port %s: %d ingress rules read back, 16 expected", p.name, #got)
    for i, r in ipairs(rules) do
      check(got[i].match == r.match and got[i].action == r.action,
        "port %s: rule %d read back as %s %s", p.name, i, tostring(got[i].match), got[i].action)
    end
  end
  -- The benchmark frame must reach the last rule and only match it.
  local x = sw:explain(bench_frame(false), a)
  check(x.verdict == "forward", "explain: verdict %s (%s)", x.verdict, tostring(x.reason))
  check(#x.rules == 1 and x.rules[1].index == 16 and x.rules[1].action == "allow",
    "explain: the benchmark frame matched %d rules, the first %s", #x.rules,
    x.rules[1] and x.rules[1].index or "none")
elseif mode == "trunk_access" or mode == "access_trunk" then
  local access, trunk = a, b
  if mode == "access_trunk" then access, trunk = b, a end
  access:vlan(10)
  trunk:vlan { mode = "trunk", allowed = { 10 } }
  check(sw:config().vlan_aware == true, "the switch is not VLAN-aware")
  local v = access:vlan()
  check(v.mode == "access" and v.pvid == 10, "port %s: not an access port in VLAN 10", access.name)
  v = trunk:vlan()
  check(v.mode == "trunk" and #v.allowed == 1 and v.allowed[1] == 10 and v.native == nil,
    "port %s: not a trunk carrying VLAN 10 alone", trunk.name)
  -- The generator's frame leaves on b, tagged (trunk_access) or untagged (access_trunk).
  local x = sw:explain(bench_frame(mode == "access_trunk"), a)
  check(x.verdict == "forward" and x.vlan == 10, "explain: verdict %s in VLAN %s (%s)", x.verdict,
    tostring(x.vlan), tostring(x.reason))
  check(#x.out == 1 and x.out[1] == b, "explain: the frame does not go to port b alone")
  local pb
  for _, p in ipairs(x.ports) do
    if p.port == b then pb = p end
  end
  check(pb and pb.sent and pb.tagged == (mode == "trunk_access"),
    "explain: port b sends it %s", pb and (pb.tagged and "tagged" or "untagged") or "not at all")
elseif mode == "impair0" then
  local zero = { loss = 0, dup = 0, reorder = 0, corrupt = 0, delay = 0, jitter = 0, rate = 0 }
  for _, p in ipairs { a, b } do
    -- As a lab does: impair the link, then set everything back to zero.
    p:impair { dir = "both", loss = 0.5, delay = 0.01 }
    local got = p:impair()
    check(got["in"] and got.out and got.out.loss == 0.5, "port %s: the impairment did not take",
      p.name)
    local cfg = { dir = "both" }
    for k, val in pairs(zero) do cfg[k] = val end
    p:impair(cfg)
    got = p:impair()
    check(got.down == false, "port %s: link cut", p.name)
    for _, d in ipairs { "in", "out" } do
      -- Nothing in force reads back as nil (or, should it ever be kept, as all zeros).
      for k in pairs(zero) do
        check(got[d] == nil or got[d][k] == 0, "port %s: %s %s reads back %s", p.name, d, k,
          got[d] and tostring(got[d][k]))
      end
    end
  end
  local x = sw:explain(bench_frame(false), a)
  check(x.verdict == "forward", "explain: verdict %s (%s)", x.verdict, tostring(x.reason))
end
