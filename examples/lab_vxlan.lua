-- examples/lab_vxlan.lua — two switches joined by a VXLAN tunnel across two namespaces.
--
-- s1 and s2 each have a vxlan port (VNI 42) whose UDP socket lives in a namespace of its
-- own (the "underlay": 10.255.0.1 and 10.255.0.2 on a veth pair between them); hosts h1
-- and h2 hang off s1 and s2, and h3 off s1. Then:
--   1. pingall: the hosts reach each other through the tunnel.
--   2. the underlay carries real VXLAN: tcpdump on the veth decodes it (RFC 7348).
--   3. each vxlan port learned which VTEP the far hosts are behind.
--   4. TCP from h1 to h2 through the tunnel (iperf3).
-- Everything is removed at the end, on errors and on Ctrl-C.
--
--   build/luaswitch examples/lab_vxlan.lua        (as root; ping, iperf3, tcpdump)

local Lab = require "luaswitch.lab"

local lab = Lab.new { name = "vxlan", verbose = true }
local s1, s2 = lab:switch "s1", lab:switch "s2"
local tunnel = lab:link(s1, s2, { kind = "vxlan", vni = 42 })
lab:host("h1", { switch = s1, ip = "192.168.42.1/24" })
lab:host("h2", { switch = s2, ip = "192.168.42.2/24" })
lab:host("h3", { switch = s1, ip = "192.168.42.3/24" })

local ok, err = pcall(function()
  lab:start()
  print(("underlay: namespaces %s (10.255.0.1) and %s (10.255.0.2), veth u0"):format(tunnel.underlay[1],
    tunnel.underlay[2]))

  print("1. pingall")
  assert(lab:pingall() == 0, "pingall dropped pings")

  print("2. what the underlay carries (tcpdump in " .. tunnel.underlay[2] .. ")")
  local u2 = tunnel.ns[2]
  local cap = u2:spawn("tcpdump -i u0 -nn -l -c 2 'udp port 4789 and udp[8:4] = 0x08000000'")
  local luaswitch = require "luaswitch"
  luaswitch.wait_until(function() return cap:output():match("listening on") end, 5)
  local replied = lab.h1:ping(lab.h2, { count = 2, interval = 0.1 })
  assert(replied, "h1 -> h2 failed")
  assert(cap:wait(5), "tcpdump saw no VXLAN datagrams")
  for line in cap:output():gmatch("[^\n]+") do
    if line:match("VXLAN") then print("  " .. line:gsub("^%S+ ", "")) end
  end

  print("3. the tunnel's tables: inner MAC -> remote VTEP")
  for _, sw in ipairs { s1, s2 } do
    local port = tunnel.ports[sw]
    for _, e in ipairs(port:vxlan_fdb()) do
      if e.flood then
        print(("  %s/%s: floods to %s"):format(sw.name, port.name, e.remote))
      else
        local who = "?"
        for _, h in ipairs(lab.hosts) do
          if h.mac == e.mac then who = h.name end
        end
        print(("  %s/%s: %s (%s) behind %s"):format(sw.name, port.name, e.mac, who, e.remote))
      end
    end
  end

  print("4. TCP h1 -> h2 through the tunnel")
  local gbps = assert(lab:iperf(lab.h1, lab.h2, { seconds = 2, quiet = true }))
  print(("  %.2f Gbit/s"):format(gbps))
end)

lab:stop()
if not ok then
  io.stderr:write("lab_vxlan: ", tostring(err), "\n")
  os.exit(1)
end
