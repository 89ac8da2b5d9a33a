-- Stream ports (4-byte big-endian length framing, as QEMU -netdev stream, passt,
-- socket_vmnet) over unix sockets and TCP, in both roles, and UDP ports (QEMU -netdev
-- dgram inet / socket,udp=): frames both ways, peers that come and go, bad input.

local luaswitch = require "luaswitch"
local S = require "support"

describe("stream ports", function()
  local sw, dir, a, ea

  before_each(function()
    dir = S.tmpdir()
    sw = luaswitch.switch "stream"
    a = sw:port { kind = "socketpair", name = "a" }
    ea = a:endpoint()
  end)

  after_each(function()
    ea:close()
    if not sw.closed then S.audit(sw) end
    sw:close()
    S.cleanup()
  end)

  it("listen on a unix path for a QEMU-style client, frames both ways, jumbo frames too", function()
    local s = assert(sw:port { kind = "stream", name = "vm", listen = dir .. "/vm.sock" })
    assert.equal("listen", s:info().role)
    assert.equal("down", s:state())
    local vm = assert(luaswitch.endpoint { connect = dir .. "/vm.sock" })
    S.eventually(function() return s:state() == "up" end, 3, "connection")
    local f = S.frame(1, S.BCAST)
    vm:send(f)
    assert.equal(f, ea:recv(1))
    local back = S.frame(2, 1)
    ea:send(back)
    assert.equal(back, vm:recv(1))
    -- many frames in one burst arrive whole and in order (partial reads and writes)
    for i = 1, 500 do vm:send(S.frame(1, 2, { size = 1514, payload = ("%08d"):format(i) })) end
    for i = 1, 500 do
      local got = ea:recv(2)
      assert.equal(("%08d"):format(i), got:sub(15, 22))
    end
    s:set { mtu = 9000 }
    a:set { mtu = 9000 }
    local big = S.frame(1, S.BCAST, { size = 9014 })
    vm:send(big)
    assert.equal(big, ea:recv(1))
    vm:close()
  end)

  it("goes down when the peer hangs up and accepts the next one", function()
    local rec = S.record(sw, { "port" })
    local s = assert(sw:port { kind = "stream", name = "vm", listen = dir .. "/vm.sock" })
    local vm = assert(luaswitch.endpoint { connect = dir .. "/vm.sock" })
    S.eventually(function() return s:state() == "up" end, 3, "connection")
    vm:close()
    S.eventually(function() return s:state() == "down" end, 3, "hang-up")
    local cpu0 = S.dataplane_cpu()
    luaswitch.dispatch(0.3)
    assert.is_true(S.dataplane_cpu() - cpu0 < 0.02, "the data plane spins")
    local vm2 = assert(luaswitch.endpoint { connect = dir .. "/vm.sock" })
    S.eventually(function() return s:state() == "up" end, 3, "second connection")
    vm2:send(S.frame(3, S.BCAST))
    assert.truthy(ea:recv(1))
    S.eventually(function() return #rec.port == 3 end, 2, "port events")
    assert.same({ "peer", "hangup", "peer" }, { rec.port[1].reason, rec.port[2].reason, rec.port[3].reason })
    assert.equal(1, s:stats().hangups)
    vm2:close()
  end)

  it("closes a connection that sends a length of 0 or above 65536, and counts it", function()
    local s = assert(sw:port { kind = "stream", name = "vm", listen = dir .. "/vm.sock" })
    for _, bad in ipairs { "\0\0\0\0", string.pack(">I4", 70000) } do
      local vm = assert(luaswitch.endpoint { connect = dir .. "/vm.sock" })
      S.eventually(function() return s:state() == "up" end, 3, "connection")
      vm:send_raw(bad .. string.rep("x", 100))
      S.eventually(function() return s:state() == "down" end, 3, "closed after a bad length")
      local _, _, code = vm:recv(1)
      assert.equal("EOF", code)
      vm:close()
    end
    assert.equal(2, s:stats().drops.framing)
    -- a good client still works
    local vm = assert(luaswitch.endpoint { connect = dir .. "/vm.sock" })
    S.eventually(function() return s:state() == "up" end, 3, "connection")
    vm:send(S.frame(1, S.BCAST))
    assert.truthy(ea:recv(1))
    vm:close()
  end)

  it("connects to a TCP listener (passt-style) and reconnects with backoff", function()
    local srv = assert(luaswitch.endpoint { listen = "127.0.0.1:17789" })
    local s = assert(sw:port { kind = "stream", name = "up", connect = "127.0.0.1:17789" })
    assert.equal("connect", s:info().role)
    assert.is_true(srv:accept(3))
    S.eventually(function() return s:state() == "up" end, 3, "connected")
    assert.equal("127.0.0.1:17789", s:info().peer)
    srv:send(S.frame(9, S.BCAST))
    assert.truthy(ea:recv(1))
    ea:send(S.frame(2, 9))
    assert.truthy(srv:recv(1))
    srv:close()
    S.eventually(function() return s:state() == "down" end, 3, "down")
    -- nothing listens: it retries quietly (no spinning) until something does
    local cpu0 = S.dataplane_cpu()
    luaswitch.dispatch(0.5)
    assert.is_true(S.dataplane_cpu() - cpu0 < 0.02, "the data plane spins")
    local srv2 = assert(luaswitch.endpoint { listen = "127.0.0.1:17789" })
    assert.is_true(srv2:accept(6))
    S.eventually(function() return s:state() == "up" end, 3, "reconnected")
    srv2:send(S.frame(9, S.BCAST))
    assert.truthy(ea:recv(1))
    srv2:close()
  end)

  it("refuses bad options and reports runtime failures", function()
    assert.has_error(function() sw:port { kind = "stream", name = "x" } end,
      "port: a stream port needs exactly one of 'listen' and 'connect'")
    assert.has_error(function() sw:port { kind = "stream", name = "x", listen = dir .. "/a", connect = dir .. "/b" } end,
      "port: a stream port needs exactly one of 'listen' and 'connect'")
    assert.has_error(function() sw:port { kind = "stream", name = "x", connect = "127.0.0.1:99999" } end,
      "port: bad option 'connect' (a socket path, @name or host:port expected, got '127.0.0.1:99999')")
    local p, msg, code = sw:port { kind = "stream", name = "x", connect = "nohost.invalid:5000" }
    assert.is_nil(p)
    assert.equal("EAI_NONAME", code)
    assert.matches("nohost.invalid", msg)
    assert(sw:port { kind = "stream", name = "l1", listen = dir .. "/in-use.sock" })
    p, msg, code = sw:port { kind = "stream", name = "l2", listen = dir .. "/in-use.sock" }
    assert.is_nil(p)
    assert.equal("EADDRINUSE", code)
  end)
end)

describe("udp ports", function()
  local sw, a, ea

  before_each(function()
    sw = luaswitch.switch "udp"
    a = sw:port { kind = "socketpair", name = "a" }
    ea = a:endpoint()
  end)

  after_each(function()
    ea:close()
    sw:close()
  end)

  it("exchange frames with a fixed peer and count datagrams from anyone else", function()
    local u = assert(sw:port { kind = "udp", name = "u", bind = "127.0.0.1:17101", peer = "127.0.0.1:17102" })
    assert.equal("up", u:state())
    local vm = assert(luaswitch.endpoint { udp = "127.0.0.1:17102", peer = "127.0.0.1:17101" })
    local f = S.frame(1, S.BCAST)
    vm:send(f)
    assert.equal(f, ea:recv(1))
    local back = S.frame(2, 1)
    ea:send(back)
    assert.equal(back, vm:recv(1))
    local stranger = assert(luaswitch.endpoint { udp = "127.0.0.1:17103", peer = "127.0.0.1:17101" })
    stranger:send(S.frame(5, S.BCAST))
    assert.is_nil(ea:recv(0.2))
    S.eventually(function() return u:stats().drops.bad_peer == 1 end, 2, "bad_peer count")
    assert.equal("127.0.0.1:17102", u:info().peer)
    vm:close(); stranger:close()
  end)

  it("learn their peer from the first datagram, over IPv6 too", function()
    local u = assert(sw:port { kind = "udp", name = "u", bind = "[::1]:17104" })
    assert.equal("down", u:state())
    local vm = assert(luaswitch.endpoint { udp = "[::1]:17105", peer = "[::1]:17104" })
    vm:send(S.frame(7, S.BCAST))
    assert.truthy(ea:recv(1))
    S.eventually(function() return u:state() == "up" end, 2, "learned peer")
    assert.equal("[::1]:17105", u:info().peer)
    ea:send(S.frame(2, 7))
    assert.truthy(vm:recv(1))
    vm:close()
  end)

  it("refuse bad options and report runtime failures", function()
    assert.has_error(function() sw:port { kind = "udp", name = "x" } end,
      "port: missing option 'bind' (host:port) for a udp port")
    assert.has_error(function() sw:port { kind = "udp", name = "x", bind = "/tmp/x" } end,
      "port: bad option 'bind' (host:port expected, got '/tmp/x')")
    local p, _, code = sw:port { kind = "udp", name = "x", bind = "nohost.invalid:5000" }
    assert.is_nil(p)
    assert.equal("EAI_NONAME", code)
    assert(sw:port { kind = "udp", name = "u1", bind = "127.0.0.1:17106" })
    p, _, code = sw:port { kind = "udp", name = "u2", bind = "127.0.0.1:17106" }
    assert.is_nil(p)
    assert.equal("EADDRINUSE", code)
    assert.equal(2, #sw:ports())
  end)
end)

describe("vxlan ports between two luaswitch switches over loopback", function()
  local s1, s2, e1, e2, v1, v2

  before_each(function()
    s1, s2 = luaswitch.switch "site1", luaswitch.switch "site2"
    v1 = assert(s1:port { kind = "vxlan", name = "vx", vni = 100, bind = "127.0.0.1:17301",
                          remotes = { "127.0.0.1:17302" } })
    v2 = assert(s2:port { kind = "vxlan", name = "vx", vni = 100, bind = "127.0.0.1:17302",
                          remotes = { "127.0.0.1:17301" } })
    e1 = s1:port { kind = "socketpair", name = "h1" }:endpoint()
    e2 = s2:port { kind = "socketpair", name = "h2" }:endpoint()
  end)

  after_each(function()
    e1:close(); e2:close()
    s1:close(); s2:close()
  end)

  it("carry frames across the tunnel and learn the remote VTEP of each inner MAC", function()
    local f = S.frame(1, S.BCAST)
    e1:send(f)
    assert.equal(f, e2:recv(1))
    local back = S.frame(2, 1)
    e2:send(back)
    assert.equal(back, e1:recv(1))
    local learned = {}
    for _, e in ipairs(v2:vxlan_fdb()) do
      if e.mac then learned[e.mac] = e.remote end
    end
    assert.equal("127.0.0.1:17301", learned[S.mac(1)]) -- the sender, a known remote
    -- unicast to a learned inner MAC goes to that VTEP only; the flood list is listed too
    local flood = 0
    for _, e in ipairs(v1:vxlan_fdb()) do
      if e.flood then flood = flood + 1 end
      if e.mac == S.mac(2) then assert.equal("127.0.0.1:17302", e.remote) end
    end
    assert.equal(1, flood)
    assert.equal(100, v1:info().vni)
  end)

  it("use static entries, drop other VNIs, and count what has no remote", function()
    v2:vxlan_add(S.mac(9), "127.0.0.1:17399")
    local static
    for _, e in ipairs(v2:vxlan_fdb()) do
      if e.mac == S.mac(9) then static = e end
    end
    assert.truthy(static)
    assert.is_true(static.static)
    assert.is_true(v2:vxlan_del(S.mac(9)))
    assert.is_false(v2:vxlan_del(S.mac(9)))
    -- a tunnel with another VNI: its datagrams are counted and dropped by v2
    local s3 = luaswitch.switch "site3"
    assert(s3:port { kind = "vxlan", name = "vx", vni = 101, bind = "127.0.0.1:17303",
                     remotes = { "127.0.0.1:17302" } })
    local e3 = s3:port { kind = "socketpair", name = "h3" }:endpoint()
    e3:send(S.frame(3, S.BCAST))
    S.eventually(function() return v2:stats().drops.encap == 1 end, 2, "VNI mismatch counted")
    assert.is_nil(e2:recv(0.1))
    e3:close()
    s3:close()
    -- a vxlan port without remotes has nowhere to flood
    local s4 = luaswitch.switch "site4"
    local v4 = assert(s4:port { kind = "vxlan", name = "vx", vni = 1, bind = "127.0.0.1:17304" })
    local e4 = s4:port { kind = "socketpair", name = "h4" }:endpoint()
    e4:send(S.frame(4, S.BCAST))
    S.eventually(function() return v4:stats().drops.no_remote == 1 end, 2, "no_remote counted")
    e4:close()
    s4:close()
  end)

  it("refuse bad options and report an unresolvable remote", function()
    assert.has_error(function() s1:port { kind = "vxlan", name = "x" } end,
      "port: missing option 'vni' (0 to 16777215) for a vxlan port")
    assert.has_error(function() s1:port { kind = "vxlan", name = "x", vni = 1 << 24 } end,
      "port: bad option 'vni' (must be between 0 and 16777215, got 16777216)")
    assert.has_error(function() s1:port { kind = "vxlan", name = "x", vni = 1, remotes = "10.0.0.1" } end,
      "port: bad option 'remotes' (list of addresses expected)")
    local p, msg, code = s1:port { kind = "vxlan", name = "x", vni = 1, bind = "127.0.0.1:17305",
                                   remotes = { "nohost.invalid" } }
    assert.is_nil(p)
    assert.equal("EAI_NONAME", code)
    assert.matches("remote nohost.invalid", msg)
    assert.has_error(function() v1:vxlan_add("02:00:00:00:00:01", "bad host!") end)
    local sp = s1:ports()[2]
    assert.has_error(function() sp:vxlan_fdb() end,
      "calling 'vxlan_fdb' on bad self (port 'h1' is a socketpair port, not a vxlan port)")
  end)
end)
