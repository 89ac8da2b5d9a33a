-- Port mirroring: copies of what a port receives and sends go to another port (here a
-- pcap capture read back with tshark and tcpdump); the counts match the mirrored port's
-- counters; a mirror destination carries nothing else.

local luaswitch = require "luaswitch"
local S = require "support"

local HAVE = S.have("tshark") and S.have("tcpdump")

local function tshark_frames(path)
  local p = io.popen(("tshark -r %q -T fields -e frame.len 2>/dev/null"):format(path))
  local n, bytes = 0, 0
  for line in p:lines() do
    n = n + 1
    bytes = bytes + tonumber(line)
  end
  p:close()
  return n, bytes
end

local function tcpdump_count(path, filter)
  local p = io.popen(("tcpdump -nn -r %q %q 2>/dev/null | grep -c '^[0-9][0-9]:'"):format(path, filter))
  local n = tonumber(p:read("l"))
  p:close()
  return n
end

describe("mirroring", function()
  local sw, ports, eps, dir

  before_each(function()
    dir = S.tmpdir()
    sw = luaswitch.switch "mirror"
    ports, eps = S.hosts(sw, { "a", "b", "c" })
  end)

  after_each(function()
    for _, ep in pairs(eps) do ep:close() end
    if not sw.closed then S.audit(sw) end
    sw:close()
    S.cleanup()
  end)

  it("copies both directions of a port into a pcap port; counts and bytes match", function()
    if not HAVE then return pending("needs tshark and tcpdump") end
    local cap = assert(sw:port { kind = "pcap", name = "cap", path = dir .. "/a.pcap" })
    assert.equal(ports.a, ports.a:mirror(cap, "both"))
    assert.equal(cap, ports.a:info().mirror_in)
    assert.equal(cap, ports.a:info().mirror_out)
    assert.is_true(cap:info().mirror_dest)
    for i = 1, 10 do eps.a:send(S.frame(1, S.BCAST, { size = 60 + i })) end -- a receives 10
    for i = 1, 7 do eps.b:send(S.frame(2, 1, { size = 100 + i })) end -- a sends 7 (flooded, then unicast)
    eps.c:send(S.frame(3, 2)) -- not a's business: b only (learned)
    for _ = 1, 10 do assert.truthy(eps.b:recv(1)) end
    for _ = 1, 7 do assert.truthy(eps.a:recv(1)) end
    S.eventually(function() return cap:stats().tx_frames == 17 end, 5, "17 copies written")
    cap:close()
    local st = ports.a:stats()
    local n, bytes = tshark_frames(dir .. "/a.pcap")
    assert.equal(st.rx_frames + st.tx_frames, n)
    assert.equal(st.rx_bytes + st.tx_bytes, bytes)
    assert.equal(10, tcpdump_count(dir .. "/a.pcap", "ether src 02:00:00:00:00:01"))
    assert.equal(7, tcpdump_count(dir .. "/a.pcap", "ether src 02:00:00:00:00:02"))
    assert.equal(0, tcpdump_count(dir .. "/a.pcap", "ether src 02:00:00:00:00:03"))
  end)

  it("mirrors one direction only, and stops on request", function()
    if not HAVE then return pending("needs tshark and tcpdump") end
    local cap = assert(sw:port { kind = "pcap", name = "cap", path = dir .. "/in.pcap" })
    ports.a:mirror(cap, "in")
    assert.is_nil(ports.a:info().mirror_out)
    eps.a:send(S.frame(1, S.BCAST))
    eps.b:send(S.frame(2, S.BCAST))
    assert.truthy(eps.a:recv(1))
    S.eventually(function() return cap:stats().tx_frames == 1 end, 5, "one copy")
    ports.a:mirror(nil)
    assert.is_nil(ports.a:info().mirror_in)
    assert.is_false(cap:info().mirror_dest)
    eps.a:send(S.frame(1, 2))
    assert.truthy(eps.b:recv(1))
    luaswitch.dispatch(0.05)
    cap:close()
    assert.equal(1, (tshark_frames(dir .. "/in.pcap")))
  end)

  it("takes a mirror destination out of normal forwarding", function()
    ports.a:mirror(ports.c, "in")
    eps.b:send(S.frame(2, S.BCAST)) -- a flood: c is no longer a member
    assert.truthy(eps.a:recv(1))
    assert.is_nil(eps.c:recv(0.1))
    eps.c:send(S.frame(3, S.BCAST)) -- and what c sends goes nowhere
    assert.is_nil(eps.a:recv(0.1))
    assert.equal(1, ports.c:stats().drops.no_dest)
    eps.a:send(S.frame(1, S.BCAST)) -- the copy of what a receives
    assert.truthy(eps.c:recv(1))
  end)

  it("clears a mirror when either end closes", function()
    local cap = assert(sw:port { kind = "pcap", name = "cap", path = dir .. "/x.pcap" })
    ports.a:mirror(cap)
    cap:close()
    assert.is_nil(ports.a:info().mirror_in)
    eps.a:send(S.frame(1, S.BCAST))
    assert.truthy(eps.b:recv(1))
    local cap2 = assert(sw:port { kind = "pcap", name = "cap2", path = dir .. "/y.pcap" })
    ports.b:mirror(cap2)
    ports.b:close()
    assert.is_false(cap2:info().mirror_dest)
  end)

  it("refuses bad mirror requests", function()
    local other = luaswitch.switch "other"
    local x = other:port { kind = "socketpair", name = "x" }
    assert.has_error(function() ports.a:mirror(ports.a) end,
      "bad argument #1 to 'mirror' (a port cannot mirror to itself)")
    assert.has_error(function() ports.a:mirror(x) end,
      "bad argument #1 to 'mirror' (port 'x' belongs to another switch)")
    assert.has_error(function() ports.a:mirror(ports.b, "sideways") end)
    ports.c:close()
    assert.has_error(function() ports.a:mirror(ports.c) end,
      "bad argument #1 to 'mirror' (port 'c' is closed)")
    eps.c:close()
    eps.c = nil
    other:close()
  end)
end)
