-- Ports against real kernel network stacks (root only): hosts in network namespaces on
-- TAP ports and on veth pairs attached with AF_PACKET ports; ping, arping, TCP with the
-- kernel's offloads on, 802.1Q tags crafted with scapy, and peers that disappear.
-- Every namespace and interface is created here and removed in after_each (and by the
-- exit hook if the process dies mid-spec).

local luaswitch = require "luaswitch"
local netns = require "luaswitch.netns"
local S = require "support"

local ROOT = S.is_root()

local function needs_root()
  if not ROOT then pending("needs root (network namespaces, TAP, AF_PACKET)") return true end
end

describe("kernel peers #root", function()
  local sw, made

  local function ns(tag)
    local n = assert(netns.create(S.uniq(tag)))
    made[#made + 1] = n
    return n
  end

  local function veth(opts)
    local v = assert(netns.veth(opts))
    made[#made + 1] = v
    return v
  end

  before_each(function()
    made = {}
    if ROOT then sw = luaswitch.switch "kernel" end
  end)

  after_each(function()
    if sw then sw:close() end
    for i = #made, 1, -1 do made[i]:close() end
    luaswitch.stop()
  end)

  local function fdb_port(mac)
    for _, e in ipairs(sw:fdb()) do if e.mac == mac then return e.port end end
  end

  local function mac_of(n, ifname)
    return n:check("cat /sys/class/net/" .. ifname .. "/address"):gsub("%s+", "")
  end

  it("connects two namespaces over TAP ports: ping, arping, TCP, and the FDB", function()
    if needs_root() then return end
    local h1, h2 = ns("t1"), ns("t2")
    local p1 = assert(sw:port { kind = "tap", name = "h1", ifname = "eth0", netns = h1.name,
                                addresses = { "10.0.0.1/24" } })
    local p2 = assert(sw:port { kind = "tap", name = "h2", ifname = "eth0", netns = h2.name,
                                addresses = { "10.0.0.2/24" } })
    local info = p1:info()
    assert.equal("eth0", info.ifname)
    assert.equal(h1.name, info.netns)
    assert.is_true(info.offloads)
    h1:check("ping -c 5 -i 0.2 -W 2 10.0.0.2")
    h2:check("ping -c 5 -i 0.2 -W 2 10.0.0.1")
    h1:check("arping -c 2 -w 3 -I eth0 10.0.0.2")
    local gbps, out = S.iperf(h1, h2, "10.0.0.2", 2)
    assert.truthy(gbps, out)
    print(("    TCP over TAP ports: %.1f Gbit/s"):format(gbps))
    assert.is_true(gbps > 0.1)
    assert.equal(p1, fdb_port(mac_of(h1, "eth0")))
    assert.equal(p2, fdb_port(mac_of(h2, "eth0")))
  end)

  it("connects namespaces over veth pairs with AF_PACKET ports, offloads left on", function()
    if needs_root() then return end
    local h1, h2 = ns("p1"), ns("p2")
    veth { name = "eth0", netns = h1, peer = S.uniq("v1"), addresses = { "10.0.1.1/24" } }
    veth { name = "eth0", netns = h2, peer = S.uniq("v2"), addresses = { "10.0.1.2/24" } }
    assert.matches("tcp%-segmentation%-offload: on", h1:check("ethtool -k eth0"))
    assert.matches("tx%-checksumming: on", h1:check("ethtool -k eth0"))
    local p1 = assert(sw:port { kind = "packet", name = "h1", ifname = S.uniq("v1") })
    assert(sw:port { kind = "packet", name = "h2", ifname = S.uniq("v2") })
    assert.equal("up", p1:state())
    h1:check("ping -c 3 -i 0.2 -W 2 10.0.1.2")
    local gbps, out = S.iperf(h1, h2, "10.0.1.2", 2)
    assert.truthy(gbps, out)
    print(("    TCP over veth + AF_PACKET ports: %.1f Gbit/s"):format(gbps))
    assert.equal(p1, fdb_port(mac_of(h1, "eth0")))
  end)

  it("segments and checksums offloaded frames for a port without offloads", function()
    if needs_root() then return end
    -- h1 on a TAP with offloads: its stack sends 64 KiB TSO frames with partial checksums.
    -- h2 on a packet port without PACKET_VNET_HDR: every frame must leave complete.
    local h1, h2 = ns("s1"), ns("s2")
    assert(sw:port { kind = "tap", name = "h1", ifname = "eth0", netns = h1.name,
                     addresses = { "10.0.2.1/24" } })
    veth { name = "eth0", netns = h2, peer = S.uniq("s2"), addresses = { "10.0.2.2/24" } }
    h2:check("ethtool -K eth0 tx off tso off gso off") -- h2's own frames must be plain too
    local p2 = assert(sw:port { kind = "packet", name = "h2", ifname = S.uniq("s2"), vnet_hdr = false })
    assert.is_false(p2:info().offloads)
    local gbps, out = S.iperf(h1, h2, "10.0.2.2", 2)
    assert.truthy(gbps, out)
    print(("    TCP TAP (TSO) -> packet without offloads: %.1f Gbit/s"):format(gbps))
    local st = p2:stats()
    assert.is_true(st.tx_frames > st.rx_frames) -- many segments out per large frame in
    assert.equal(0, st.drops.tx_error)
    assert.equal(0, st.drops.tx_mtu)
  end)

  it("carries 802.1Q-tagged frames intact across TAP and packet ports", function()
    if needs_root() then return end
    if not S.have("tcpdump") or os.execute("/usr/bin/python3 -c 'import scapy' 2>/dev/null") ~= true then
      pending("needs tcpdump and python3-scapy")
      return
    end
    local h1, h2 = ns("q1"), ns("q2")
    assert(sw:port { kind = "tap", name = "h1", ifname = "eth0", netns = h1.name })
    veth { name = "eth0", netns = h2, peer = S.uniq("q2") }
    assert(sw:port { kind = "packet", name = "h2", ifname = S.uniq("q2") })
    local function tagged(from, to, vid)
      local cap = to:spawn(("tcpdump -i eth0 -nn -e -c 1 -l 'vlan %d and udp port 4242'"):format(vid))
      S.eventually(function() return cap:output():match("listening on") end, 5, "tcpdump")
      from:check(("/usr/bin/python3 -c \"from scapy.all import *; " ..
        "sendp(Ether(dst='ff:ff:ff:ff:ff:ff')/Dot1Q(vlan=%d,prio=5)/IP(dst='10.9.9.9')/UDP(dport=4242)/Raw(b'luaswitch'), iface='eth0', verbose=False)\"")
        :format(vid))
      assert.is_true(cap:wait(5), "no tagged frame arrived")
      local text = cap:output()
      cap:cleanup()
      return text
    end
    assert.matches("vlan 42, p 5", tagged(h1, h2, 42)) -- TAP in, AF_PACKET out
    assert.matches("vlan 77, p 5", tagged(h2, h1, 77)) -- AF_PACKET in (tag stripped by the kernel), TAP out
  end)

  it("takes a TAP port down when its namespace is deleted, idles, and works when re-added", function()
    if needs_root() then return end
    local rec = S.record(sw, { "port" })
    local h1 = ns("d1")
    local p1 = assert(sw:port { kind = "tap", name = "h1", ifname = "eth0", netns = h1.name })
    h1:close()
    S.eventually(function() return #rec.port >= 1 end, 5, "port event")
    assert.equal(p1, rec.port[1].port)
    assert.equal("down", rec.port[1].state)
    assert.equal("hangup", rec.port[1].reason)
    local cpu0 = S.dataplane_cpu()
    luaswitch.dispatch(0.3)
    assert.is_true(S.dataplane_cpu() - cpu0 < 0.02, "the data plane spins")
    p1:close()
    local again = ns("d1")
    local p2 = assert(sw:port { kind = "tap", name = "h1", ifname = "eth0", netns = again.name,
                                addresses = { "10.0.3.1/24" } })
    assert.equal("up", p2:state())
  end)

  it("takes a packet port down when its interface is deleted, idles, and works when re-added", function()
    if needs_root() then return end
    local rec = S.record(sw, { "port" })
    local h1 = ns("e1")
    local v = veth { name = "eth0", netns = h1, peer = S.uniq("e1"), addresses = { "10.0.4.1/24" } }
    local p1 = assert(sw:port { kind = "packet", name = "h1", ifname = S.uniq("e1") })
    v:close()
    S.eventually(function() return #rec.port >= 1 end, 5, "port event")
    assert.equal("down", rec.port[#rec.port].state)
    assert.equal("hangup", rec.port[#rec.port].reason)
    local cpu0 = S.dataplane_cpu()
    luaswitch.dispatch(0.3)
    assert.is_true(S.dataplane_cpu() - cpu0 < 0.02, "the data plane spins")
    p1:close()
    veth { name = "eth0", netns = h1, peer = S.uniq("e1"), addresses = { "10.0.4.1/24" } }
    local p2 = assert(sw:port { kind = "packet", name = "h1", ifname = S.uniq("e1") })
    assert.equal("up", p2:state())
  end)

  for _, dport in ipairs { 4789, 8472 } do
    it(("exchanges pings with a Linux vxlan device (dstport %d) through a vxlan port"):format(dport), function()
      if needs_root() then return end
      -- Linux short-cuts vxlan to local addresses, so both VTEPs live in namespaces of
      -- their own, joined by a veth: ours in `vt`, Linux's in `lx`; a TAP host in `h`.
      local vt, lx, h = ns("vt"), ns("lx"), ns("vh")
      veth { name = "vtA", netns = vt, peer = "vxB", peer_netns = lx,
             addresses = { "10.77.0.1/24" }, peer_addresses = { "10.77.0.2/24" } }
      lx:check(("ip link add vx0 type vxlan id 42 remote 10.77.0.1 local 10.77.0.2 dstport %d dev vxB"
        .. " && ip addr add 192.168.77.2/24 dev vx0 && ip link set vx0 up"):format(dport))
      local vp = assert(sw:port { kind = "vxlan", name = "vx", bind = "10.77.0.1:" .. dport, vni = 42,
                                  remotes = { "10.77.0.2" }, netns = vt.name })
      assert.equal(42, vp:info().vni)
      assert.equal(1450, vp:info().mtu)
      local hp = assert(sw:port { kind = "tap", name = "h", ifname = "eth0", netns = h.name, mtu = 1450,
                                  addresses = { "192.168.77.1/24" } })
      h:check("ping -c 5 -i 0.2 -W 2 192.168.77.2")
      lx:check("ping -c 2 -i 0.2 -W 2 192.168.77.1")
      -- the Linux side's MAC was learned toward its VTEP, at the configured port
      local lxmac = mac_of(lx, "vx0")
      local learned
      for _, e in ipairs(vp:vxlan_fdb()) do
        if e.mac == lxmac then learned = e end
      end
      assert.truthy(learned, "the Linux MAC is in the tunnel table")
      assert.equal("10.77.0.2:" .. dport, learned.remote)
      assert.equal(vp, fdb_port(lxmac))
      assert.equal(hp, fdb_port(mac_of(h, "eth0")))
      assert.equal(0, vp:stats().drops.encap)
      -- the wire format is exactly RFC 7348's: Linux counts no errors on its device
      assert.matches("RX:.-\n%s*%d+%s+%d+%s+0%s", lx:check("ip -s link show vx0"))
    end)
  end

  it("counts malformed VXLAN datagrams and keeps forwarding", function()
    if needs_root() then return end
    local vt = ns("vb")
    local vp = assert(sw:port { kind = "vxlan", name = "vx", bind = "127.0.0.1:14789", vni = 7,
                                remotes = { "127.0.0.1:14790" }, netns = vt.name })
    local a = sw:port { kind = "socketpair", name = "a" }
    local ea = a:endpoint()
    local inner = S.frame(1, S.BCAST)
    local function vx(flags, vni, reserved) return string.char(flags, 0, 0, 0) ..
      string.pack(">I3", vni) .. string.char(reserved or 0) end
    local bad = { vx(0x08, 7):sub(1, 6), vx(0x0c, 7) .. inner, vx(0x08, 8) .. inner, vx(0x08, 7, 1) .. inner,
                  vx(0x00, 7) .. inner, vx(0x08, 7) .. inner:sub(1, 10) }
    vt:check("python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); " ..
      "s.bind((\"127.0.0.1\", 14790)); [s.sendto(bytes.fromhex(h), (\"127.0.0.1\", 14789)) for h in sys.argv[1:]]' "
      .. table.concat((function()
        local hex = {}
        for i, d in ipairs(bad) do hex[i] = (d:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) end
        hex[#hex + 1] = (vx(0x08, 7) .. inner):gsub(".", function(c) return ("%02x"):format(c:byte()) end)
        return hex
      end)(), " "))
    assert.equal(inner, ea:recv(2)) -- the good one went through
    S.eventually(function() return vp:stats().drops.encap == #bad end, 2, "encap drops")
    ea:close()
  end)

  it("joins a TAP host, a veth/packet host, a stream peer and a UDP peer on one switch", function()
    if needs_root() then return end
    local ha, hb = ns("ma"), ns("mb")
    assert(sw:port { kind = "tap", name = "a", ifname = "eth0", netns = ha.name, addresses = { "10.0.5.1/24" } })
    veth { name = "eth0", netns = hb, peer = S.uniq("mb"), addresses = { "10.0.5.2/24" } }
    assert(sw:port { kind = "packet", name = "b", ifname = S.uniq("mb") })
    local dir = S.tmpdir()
    assert(sw:port { kind = "stream", name = "qemu", listen = dir .. "/qemu.sock" })
    assert(sw:port { kind = "udp", name = "udp", bind = "127.0.0.1:17201", peer = "127.0.0.1:17202" })
    local qemu = assert(luaswitch.endpoint { connect = dir .. "/qemu.sock" })
    local udp = assert(luaswitch.endpoint { udp = "127.0.0.1:17202", peer = "127.0.0.1:17201" })
    ha:check("ping -c 3 -i 0.2 -W 2 10.0.5.2")
    -- each peer asks the TAP host for its MAC with ARP; the kernel's reply reaches it
    local function arp_who_has(src_mac, src_ip, dst_ip)
      local function ip4(s) return string.char(s:match("(%d+)%.(%d+)%.(%d+)%.(%d+)")) end
      local frame = require "luaswitch.frame"
      local payload = string.pack(">I2I2BBI2", 1, 0x0800, 6, 4, 1) .. frame.mac_bytes(src_mac) ..
        ip4(src_ip) .. string.rep("\0", 6) .. ip4(dst_ip)
      return frame.ethernet { dst = S.BCAST, src = src_mac, type = 0x0806, payload = payload, size = 60 }
    end
    local frame = require "luaswitch.frame"
    for _, peer in ipairs { { ep = qemu, mac = S.mac(0x71), ip = "10.0.5.71" },
                            { ep = udp, mac = S.mac(0x72), ip = "10.0.5.72" } } do
      peer.ep:drain()
      peer.ep:send(arp_who_has(peer.mac, peer.ip, "10.0.5.1"))
      local reply
      S.eventually(function()
        local f = peer.ep:recv(0.1)
        local p = f and frame.parse(f)
        if p and p.type == 0x0806 and p.dst == peer.mac then reply = p end
        return reply
      end, 5, "ARP reply to " .. peer.ip)
      assert.equal(mac_of(ha, "eth0"), reply.src)
    end
    qemu:close(); udp:close()
  end)

  it("captures a TAP host's traffic with a pcap mirror that tshark and tcpdump read", function()
    if needs_root() then return end
    if not (S.have("tshark") and S.have("tcpdump")) then return pending("needs tshark and tcpdump") end
    local dir = S.tmpdir()
    local h1, h2 = ns("c1"), ns("c2")
    -- no IPv6 chatter: the capture then holds exactly the pings and their ARP
    h1:check("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1")
    h2:check("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1")
    local p1 = assert(sw:port { kind = "tap", name = "h1", ifname = "eth0", netns = h1.name,
                                addresses = { "10.0.6.1/24" } })
    assert(sw:port { kind = "tap", name = "h2", ifname = "eth0", netns = h2.name,
                     addresses = { "10.0.6.2/24" } })
    local cap = assert(sw:port { kind = "pcap", name = "cap", path = dir .. "/h1.pcap" })
    local st0 = p1:stats()
    p1:mirror(cap)
    h1:check("ping -c 5 -i 0.2 -W 2 10.0.6.2")
    p1:mirror(nil)
    local st1 = p1:stats()
    local st = { rx_frames = st1.rx_frames - st0.rx_frames, tx_frames = st1.tx_frames - st0.tx_frames,
                 rx_bytes = st1.rx_bytes - st0.rx_bytes, tx_bytes = st1.tx_bytes - st0.tx_bytes }
    S.eventually(function() return cap:stats().tx_frames == st.rx_frames + st.tx_frames end, 5,
      "every copy written")
    cap:close()
    local p = io.popen(("tshark -r %q -T fields -e frame.len 2>/dev/null"):format(dir .. "/h1.pcap"))
    local n, bytes = 0, 0
    for line in p:lines() do n, bytes = n + 1, bytes + tonumber(line) end
    p:close()
    assert.equal(st.rx_frames + st.tx_frames, n)
    assert.equal(st.rx_bytes + st.tx_bytes, bytes)
    local q = io.popen(("tcpdump -nn -r %q 'icmp' 2>/dev/null"):format(dir .. "/h1.pcap"))
    local pings = q:read("a")
    q:close()
    local _, requests = pings:gsub("ICMP echo request", "")
    local _, replies = pings:gsub("ICMP echo reply", "")
    assert.equal(5, requests)
    assert.equal(5, replies)
  end)

  it("returns clear errors for missing interfaces, namespaces and bad names", function()
    if needs_root() then return end
    local p, msg, code = sw:port { kind = "packet", name = "x", ifname = "nosuchif0" }
    assert.is_nil(p)
    assert.equal("ENODEV", code)
    assert.matches("interface nosuchif0", msg)
    p, msg, code = sw:port { kind = "tap", name = "y", netns = S.uniq("none") }
    assert.is_nil(p)
    assert.equal("ENOENT", code)
    assert.matches("netns", msg)
    assert.has_error(function() sw:port { kind = "tap", name = "waytoolonginterfacename" } end,
      "port: bad option 'name' (interface names are at most 15 bytes, got 'waytoolonginterfacename')")
    assert.has_error(function() sw:port { kind = "packet", name = "z" } end,
      "port: missing option 'ifname' for a packet port")
    assert.equal(0, #sw:ports())
  end)
end)
