-- VLANs and port flags through the public Lua API, end to end over socketpair ports:
-- access and trunk ports (802.1Q and 802.1ad), native VLANs, per-VLAN tables, and one
-- spec per Linux-bridge port flag (learning, flood, mcast_flood, bcast_flood, isolated,
-- hairpin, locked), plus wire mode for link-local frames.

local luaswitch = require "luaswitch"
local frame = require "luaswitch.frame"
local S = require "support"

local function tags_of(f)
  local t = {}
  for i, tag in ipairs(frame.parse(f).tags) do t[i] = tag.vid end
  return t
end

describe("VLANs", function()
  local sw, ports, eps

  before_each(function()
    sw = luaswitch.switch { name = "vlans", vlan_aware = true }
    ports, eps = S.hosts(sw, { "a10", "b10", "c20", "d20", "t" })
    ports.a10:vlan(10)
    ports.b10:vlan { mode = "access", pvid = 10 }
    ports.c20:vlan(20)
    ports.d20:vlan { pvid = 20 }
    ports.t:vlan { mode = "trunk", allowed = { 10, 20 } }
  end)

  after_each(function()
    S.teardown(sw, ports, eps)
  end)

  it("keeps access ports of VLAN 10 and VLAN 20 apart, on one switch", function()
    local f = S.frame(1, S.BCAST)
    eps.a10:send(f)
    assert.equal(f, eps.b10:recv(1))
    assert.is_true(S.nothing(eps.c20))
    assert.is_true(S.nothing(eps.d20))
    eps.c20:send(S.frame(3, S.BCAST))
    assert.truthy(eps.d20:recv(1))
    assert.is_true(S.nothing(eps.a10))
    assert.is_true(S.nothing(eps.b10))
    -- unicast to a MAC known only in the other VLAN floods in its own VLAN instead
    S.collect(eps.t, 0.05)
    eps.c20:send(S.frame(3, 1))
    assert.truthy(eps.d20:recv(1))
    assert.is_true(S.nothing(eps.a10))
  end)

  it("carries both VLANs on a trunk, tagged, and delivers tagged frames untagged to access ports", function()
    eps.a10:send(S.frame(1, S.BCAST))
    eps.c20:send(S.frame(3, S.BCAST))
    local got = { eps.t:recv(1), eps.t:recv(1) }
    table.sort(got, function(x, y) return tags_of(x)[1] < tags_of(y)[1] end)
    assert.same({ 10 }, tags_of(got[1]))
    assert.same({ 20 }, tags_of(got[2]))
    assert.equal(S.frame(1, S.BCAST):sub(1, 12), got[1]:sub(1, 12))
    -- the tag is inserted, the rest of the frame is the same bytes
    assert.equal(S.frame(1, S.BCAST):sub(13), got[1]:sub(17))
    S.collect(eps.b10, 0.05); S.collect(eps.d20, 0.05); S.collect(eps.a10, 0.05); S.collect(eps.c20, 0.05)
    -- from the trunk: a frame tagged 20 reaches VLAN 20's access ports untagged
    eps.t:send(S.frame(9, S.BCAST, { vlan = 20 }))
    local f = eps.c20:recv(1)
    assert.same({}, tags_of(f))
    local sent = S.frame(9, S.BCAST, { vlan = 20 })
    assert.equal(sent:sub(1, 12) .. sent:sub(17), f) -- the tag removed, nothing else
    assert.truthy(eps.d20:recv(1))
    assert.is_true(S.nothing(eps.a10))
    assert.is_true(S.nothing(eps.b10))
  end)

  it("drops and counts tags a port does not carry, and untagged frames on a trunk without a native VLAN", function()
    eps.t:send(S.frame(9, S.BCAST, { vlan = 30 }))
    eps.t:send(S.frame(9, S.BCAST))
    eps.a10:send(S.frame(1, S.BCAST, { vlan = 20 })) -- tagged with another VLAN on an access port
    eps.t:send(S.frame(9, S.BCAST, { vlan = 4095 }))
    eps.t:send(S.frame(9, S.BCAST, { vlan = 10 }))
    assert.truthy(eps.a10:recv(1)) -- the good one, sent last
    for _, n in ipairs { "b10", "c20", "d20" } do S.collect(eps[n], 0.05) end
    assert.equal(3, ports.t:stats().drops.vlan)
    assert.equal(1, ports.a10:stats().drops.vlan)
  end)

  it("sends the trunk's native VLAN untagged and takes untagged frames into it", function()
    ports.t:vlan { mode = "trunk", allowed = { 20 }, native = 10 }
    assert.same({ mode = "trunk", allowed = { 20 }, native = 10, native_tagged = false }, ports.t:vlan())
    eps.a10:send(S.frame(1, S.BCAST))
    local f = eps.t:recv(1)
    assert.same({}, tags_of(f))
    assert.equal(S.frame(1, S.BCAST), f)
    eps.t:send(S.frame(9, S.BCAST))
    assert.equal(S.frame(9, S.BCAST), eps.a10:recv(1))
    assert.is_true(S.nothing(eps.c20))
    -- native_tagged: the native VLAN leaves tagged too
    ports.t:vlan { mode = "trunk", allowed = { 20 }, native = 10, native_tagged = true }
    eps.a10:send(S.frame(1, S.BCAST))
    assert.same({ 10 }, tags_of(eps.t:recv(1)))
  end)

  it("keeps one MAC in two VLANs as two table entries", function()
    eps.t:send(S.frame(7, S.BCAST, { vlan = 10 }))
    eps.t:send(S.frame(7, S.BCAST, { vlan = 20 }))
    assert.truthy(eps.a10:recv(1))
    assert.truthy(eps.c20:recv(1))
    local vlans = {}
    for _, e in ipairs(sw:fdb()) do
      if e.mac == S.mac(7) then vlans[#vlans + 1] = e.vlan; assert.equal(ports.t, e.port) end
    end
    table.sort(vlans)
    assert.same({ 10, 20 }, vlans)
    -- and unicast to it goes out tagged with the VLAN it came from
    S.collect(eps.b10, 0.05); S.collect(eps.d20, 0.05)
    eps.c20:send(S.frame(3, 7))
    assert.same({ 20 }, tags_of(eps.t:recv(1)))
    assert.is_true(S.nothing(eps.d20))
  end)

  it("passes tags through untouched on a VLAN-unaware switch, and relearns when switched live", function()
    sw:set { vlan_aware = false }
    local f = S.frame(1, S.BCAST, { vlan = 77 })
    eps.a10:send(f)
    for _, n in ipairs { "b10", "c20", "d20", "t" } do assert.equal(f, eps[n]:recv(1)) end
    assert.equal(0, sw:fdb()[1].vlan)
    sw:set { vlan_aware = true }
    assert.equal(0, #sw:fdb()) -- learned under the other classification: forgotten
    assert.is_true(sw:config().vlan_aware)
  end)

  it("pushes an 802.1ad service tag over the customer's 802.1Q tag (QinQ)", function()
    sw:set { vlan_protocol = "802.1ad" }
    ports.a10:vlan(100)
    ports.t:vlan { mode = "trunk", allowed = { 100 } }
    local f = S.frame(1, S.BCAST, { vlan = 5 }) -- a C-tag: untagged for an S-VLAN switch
    eps.a10:send(f)
    local got = eps.t:recv(1)
    local p = frame.parse(got)
    assert.equal(0x88a8, p.tags[1].tpid)
    assert.equal(100, p.tags[1].vid)
    assert.equal(0x8100, p.tags[2].tpid)
    assert.equal(5, p.tags[2].vid)
    -- and back: the S-tag comes off, the C-tag stays
    eps.t:send(got)
    assert.equal(f, eps.a10:recv(1))
  end)

  it("accepts VLAN settings at port creation and reads them back", function()
    local p = sw:port { kind = "socketpair", name = "x", vlan = { mode = "trunk", allowed = { "100-103", 7 }, native = 1 } }
    assert.same({ mode = "trunk", allowed = { 7, 100, 101, 102, 103 }, native = 1, native_tagged = false }, p:vlan())
    local q = sw:port { kind = "socketpair", name = "y", vlan = 33 }
    assert.same({ mode = "access", pvid = 33 }, q:vlan())
    local r = sw:port { kind = "socketpair", name = "z" }
    assert.same({ mode = "access", pvid = 1 }, r:vlan())
  end)

  it("changes membership live while traffic flows, losing nothing in the VLAN that stays", function()
    local sink = eps.b10:start_receiving()
    local job = eps.a10:start_sending { frame = S.frame(1, S.BCAST), count = 20000 }
    for i = 1, 50 do
      ports.t:vlan { mode = "trunk", allowed = (i % 2 == 0) and { 10, 20 } or { 20 } }
      assert.same(i % 2 == 0 and { 10, 20 } or { 20 }, ports.t:vlan().allowed)
    end
    job:wait()
    S.eventually(function() return sink:progress() >= 20000 end, 10, "20000 frames in VLAN 10")
    local r = sink:stop()
    assert.equal(20000, r.frames)
  end)
end)

describe("port flags", function()
  local sw, ports, eps

  before_each(function()
    sw = luaswitch.switch { name = "flags" }
    ports, eps = S.hosts(sw, { "a", "b", "c", "d" })
  end)

  after_each(function()
    S.teardown(sw, ports, eps)
  end)

  -- a broadcast from MAC n on port `name`; once the switch has read it, take the flood's
  -- copies off the other ports (which of them get one depends on the flags under test)
  local function learn(name, n)
    S.sent(ports[name], eps[name], S.frame(n, S.BCAST))
    for k, ep in pairs(eps) do if k ~= name then S.collect(ep, 0.03) end end
  end

  it("reads back every flag with its Linux bridge default", function()
    local info = ports.a:info()
    assert.same({ true, true, true, true, false, false, false },
      { info.learning, info.flood, info.mcast_flood, info.bcast_flood, info.isolated, info.hairpin, info.locked })
    ports.a:set { isolated = true, learning = false }
    info = ports.a:info()
    assert.is_true(info.isolated)
    assert.is_false(info.learning)
    local p = sw:port { kind = "socketpair", name = "e", hairpin = true, flood = false }
    assert.is_true(p:info().hairpin)
    assert.is_false(p:info().flood)
  end)

  it("learning = false: the port's source MACs are not learned, so frames to them flood", function()
    ports.b:set { learning = false }
    learn("b", 2)
    assert.equal(0, #sw:fdb())
    eps.a:send(S.frame(1, 2))
    for _, n in ipairs { "b", "c", "d" } do assert.truthy(eps[n]:recv(1)) end
    assert.equal(1, sw:stats().flooded - 1) -- the learn() broadcast, then this one
    ports.b:set { learning = true }
    learn("b", 2)
    local on_b = 0
    for _, e in ipairs(sw:fdb()) do if e.port == ports.b then on_b = on_b + 1 end end
    assert.equal(1, on_b)
  end)

  it("flood = false: no unknown unicast for the port, but broadcast still", function()
    ports.c:set { flood = false }
    eps.a:send(S.frame(1, 99))
    assert.truthy(eps.b:recv(1))
    assert.truthy(eps.d:recv(1))
    assert.is_true(S.nothing(eps.c))
    eps.a:send(S.frame(1, S.BCAST))
    assert.truthy(eps.c:recv(1))
    -- and known unicast still reaches it
    learn("c", 3)
    eps.a:send(S.frame(1, 3))
    assert.truthy(eps.c:recv(1))
  end)

  it("mcast_flood = false: no multicast for the port, but broadcast and unknown unicast still", function()
    ports.c:set { mcast_flood = false }
    eps.a:send(S.frame(1, "01:00:5e:00:00:fb"))
    assert.truthy(eps.b:recv(1))
    assert.is_true(S.nothing(eps.c))
    eps.a:send(S.frame(1, S.BCAST))
    assert.truthy(eps.c:recv(1))
    eps.a:send(S.frame(1, 99))
    assert.truthy(eps.c:recv(1))
  end)

  it("bcast_flood = false: no broadcast for the port, but multicast still", function()
    ports.c:set { bcast_flood = false }
    eps.a:send(S.frame(1, S.BCAST))
    assert.truthy(eps.b:recv(1))
    assert.is_true(S.nothing(eps.c))
    eps.a:send(S.frame(1, "33:33:00:00:00:01"))
    assert.truthy(eps.c:recv(1))
  end)

  it("isolated: isolated ports reach only non-isolated ones, unicast and flooded", function()
    ports.a:set { isolated = true }
    ports.b:set { isolated = true }
    learn("b", 2)
    eps.a:send(S.frame(1, S.BCAST))
    assert.truthy(eps.c:recv(1))
    assert.truthy(eps.d:recv(1))
    assert.is_true(S.nothing(eps.b))
    eps.a:send(S.frame(1, 2)) -- known, on b: not delivered
    assert.is_true(S.nothing(eps.b))
    assert.equal(1, ports.a:stats().drops.no_dest)
    eps.c:send(S.frame(3, 2)) -- from a non-isolated port: delivered
    assert.truthy(eps.b:recv(1))
  end)

  it("hairpin: a frame may go back out of the port it came in on", function()
    learn("a", 1)
    eps.a:send(S.frame(5, 1)) -- destination on the same port: dropped without hairpin
    assert.is_true(S.nothing(eps.a))
    ports.a:set { hairpin = true }
    local f = S.frame(5, 1)
    eps.a:send(f)
    assert.equal(f, eps.a:recv(1))
    eps.a:send(S.frame(5, S.BCAST)) -- and floods include it
    assert.truthy(eps.a:recv(1))
    assert.truthy(eps.b:recv(1))
  end)

  it("locked: only source MACs already in the table on that port pass", function()
    learn("c", 3)
    ports.a:set { locked = true }
    eps.a:send(S.frame(1, 3))
    assert.is_true(S.nothing(eps.c))
    assert.equal(1, ports.a:stats().drops.locked)
    assert.equal(1, #sw:fdb()) -- nothing learned from the locked port
    eps.a:send(S.frame(3, S.BCAST)) -- a MAC that is in the table, but on another port
    assert.is_true(S.nothing(eps.b))
    assert.equal(2, ports.a:stats().drops.locked)
    sw:fdb_add(S.mac(1), ports.a)
    local f = S.frame(1, 3)
    eps.a:send(f)
    assert.equal(f, eps.c:recv(1))
    ports.a:set { locked = false }
    eps.a:send(S.frame(9, 3))
    assert.truthy(eps.c:recv(1))
  end)

  it("wire mode forwards an STP BPDU that the default mode drops", function()
    -- IEEE 802.1D configuration BPDU: to 01:80:c2:00:00:00, 802.3 length + LLC 42 42 03
    local bpdu = frame.mac_bytes("01:80:c2:00:00:00") .. frame.mac_bytes(S.mac(1)) ..
      string.pack(">I2", 38) .. "\x42\x42\x03" .. "\0\0\0\0" .. string.rep("\0", 31)
    eps.a:send(bpdu)
    eps.a:send(frame.mac_bytes("01:80:c2:00:00:0e") .. frame.mac_bytes(S.mac(1)) ..
      string.pack(">I2", 0x88cc) .. string.rep("\0", 46)) -- LLDP
    eps.a:send(S.frame(1, S.BCAST)) -- a normal one behind them
    for _, n in ipairs { "b", "c", "d" } do assert.equal(S.frame(1, S.BCAST), eps[n]:recv(1)) end
    assert.equal(2, ports.a:stats().drops.link_local)
    sw:set { wire = true }
    assert.is_true(sw:config().wire)
    eps.a:send(bpdu)
    for _, n in ipairs { "b", "c", "d" } do assert.equal(bpdu, eps[n]:recv(1)) end
  end)
end)
