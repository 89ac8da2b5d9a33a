-- examples/lab_vlan_trunk.lua — two switches joined by a VLAN trunk.
--
-- s1 and s2 (VLAN-aware) are joined by a patch link that is a trunk for VLANs 10 and 20.
-- Each switch has a host in VLAN 10 and one in VLAN 20 (access ports), all four in one
-- subnet, 10.0.0.0/24, so that only the VLANs keep them apart:
--   1. pingall: a10 <-> b10 and a20 <-> b20 answer across the trunk; no ping crosses
--      from VLAN 10 to VLAN 20 (8 of 12 dropped).
--   2. the trunk carries the frames tagged: its counters, and s2's MAC table per VLAN.
--   3. sw:explain() of a frame from a10 to a20's MAC: why it does not get there.
--   4. VLAN 20 is taken off the trunk live: a20 <-> b20 stops answering.
-- Everything is removed at the end, on errors and on Ctrl-C.
--
--   build/luaswitch examples/lab_vlan_trunk.lua        (as root; ping installed)

local Lab = require "luaswitch.lab"
local frame = require "luaswitch.frame"

local lab = Lab.new { name = "vlan_trunk", verbose = true }
local s1, s2 = lab:switch "s1", lab:switch "s2"
local trunk = lab:link(s1, s2, { trunk = { 10, 20 } })
lab:host("a10", { switch = s1, vlan = 10, ip = "10.0.0.1/24" })
lab:host("a20", { switch = s1, vlan = 20, ip = "10.0.0.2/24" })
lab:host("b10", { switch = s2, vlan = 10, ip = "10.0.0.3/24" })
lab:host("b20", { switch = s2, vlan = 20, ip = "10.0.0.4/24" })

local function ping(from, to)
  local ok, r = lab[from]:ping(lab[to], { count = 3, interval = 0.05, timeout = 0.5 })
  return ("%s -> %s: %d of %d replies"):format(from, to, r.received, r.sent), ok
end

local ok, err = pcall(function()
  lab:start()

  print("1. pingall (a10, b10 in VLAN 10; a20, b20 in VLAN 20; one subnet)")
  local drop, res = lab:pingall { timeout = 0.5 }
  assert(res.a10.b10 and res.b10.a10 and res.a20.b20 and res.b20.a20, "same-VLAN pings failed across the trunk")
  assert(not (res.a10.a20 or res.a10.b20 or res.b10.a20 or res.b10.b20), "a ping crossed VLANs")
  print(("  same VLAN: answered across the trunk; other VLAN: never (%.1f%% dropped)"):format(drop))

  print("2. the trunk")
  local pa = trunk.ports[s1]
  print(("  %s on s1: vlan %s"):format(pa.name, require("luaswitch.console").pretty(pa:vlan())))
  local st = pa:stats()
  print(("  frames s1 -> s2: %d, s2 -> s1: %d, dropped for their VLAN: %d"):format(st.tx_frames, st.rx_frames,
    st.drops.vlan))
  print("  s2's MAC table:")
  for _, e in ipairs(s2:fdb()) do
    print(("    VLAN %-3d %s  on %s"):format(e.vlan, e.mac, e.port.name))
  end

  print("3. explain: a frame from a10 to a20's MAC, on s1")
  local f = frame.ethernet { src = lab.a10.mac, dst = lab.a20.mac, type = 0x0800, size = 60 }
  local x = s1:explain(f, lab.a10.port)
  print(("  verdict %s, VLAN %d (%s), lookup %s, %s"):format(x.verdict, x.vlan, x.vlan_reason, x.lookup,
    x.decision or "-"))
  for _, p in ipairs(x.ports) do
    print(("    %-5s %s"):format(p.port.name, p.sent and ("sent" .. (p.tagged and (", tagged " .. p.vlan) or "")) or p.why))
  end

  print("4. VLAN 20 off the trunk (both ends), live")
  for _, p in ipairs { trunk.ports[s1], trunk.ports[s2] } do p:vlan { mode = "trunk", allowed = { 10 } } end
  local line10, ok10 = ping("a10", "b10")
  local line20, ok20 = ping("a20", "b20")
  print("  " .. line10)
  print("  " .. line20)
  assert(ok10 and not ok20, "VLAN 20 still crosses the trunk")
end)

lab:stop()
if not ok then
  io.stderr:write("lab_vlan_trunk: ", tostring(err), "\n")
  os.exit(1)
end
