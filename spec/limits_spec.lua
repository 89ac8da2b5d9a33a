-- Every documented limit, reached (or, where reaching it would take gigabytes or minutes,
-- set at its maximum and one past it): the documented error, never a crash, and the switch
-- still forwarding afterwards. The README's "Limits" section, the port kinds' and the
-- policy sections' limits, and the event ring: a full ring drops events, counts them, and
-- Lua hears how many with a "lost" event.
--
-- Not reached here, with the reason:
--  * 16,777,216 learned MACs: 16.7 M frames and about 1.3 GB of table; the cap is set at
--    its maximum, and a smaller cap is reached (fdb_spec reaches caps with every policy);
--  * 1,048,576 static entries: one control-plane command per entry (about 40 us each, so
--    40 s); reached in the C unit test spec/c/test_fdb.c (test_static_limit) instead;
--  * 1,000,000 frames waiting on one impairment: about 2 GiB of frame buffers; the limit
--    is set at its maximum, and a smaller one is reached.

local luaswitch = require "luaswitch"
local frame = require "luaswitch.frame"
local S = require "support"

local function raises(pattern, fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error matching " .. pattern)
  assert.matches(pattern, tostring(err))
end

-- Wait until cond() holds, without dispatching events (the ring must fill): a deadline and
-- a short poll interval on an idle socket.
local idle
local function settle(cond, timeout, what)
  idle = idle or luaswitch.endpoint {}
  local deadline = luaswitch.monotime() + (timeout or 10)
  while not cond() do
    assert(luaswitch.monotime() < deadline, "timed out waiting for " .. (what or "condition"))
    idle:recv(0.005)
  end
end

-- Wait until no more fds are open than n: ports close their sockets on the data plane
-- after the command that closed them returned, and a transient fd in the first count is
-- tolerated (a leak shows as more, and stays).
local function fds_back_to(n)
  settle(function() return S.fd_count() <= n end, 5, "the fd count to return to " .. n)
end

-- Wait until the port received n frames (without dispatching).
local function received(p, n, timeout)
  settle(function() return p:stats().rx_frames >= n end, timeout, ("%d frames on %s"):format(n, p.name))
end

describe("limits", function()
  local eps

  before_each(function()
    eps = {}
    idle = luaswitch.endpoint {} -- before any fd count
  end)

  after_each(function()
    for _, ep in pairs(eps) do ep:close() end
    for _, sw in ipairs(luaswitch.switches()) do S.audit(sw) end
    luaswitch.stop()
    luaswitch.clock("real")
    luaswitch.off("lost")
    if idle then idle:close(); idle = nil end
    S.cleanup()
  end)

  local function hosts(sw, names)
    local ports, es = S.hosts(sw, names)
    for n, ep in pairs(es) do eps[#eps + 1] = ep end
    return ports, es
  end

  it("4096 ports per switch: the next is refused with EMFILE, nothing leaks, and a flood still reaches the last port", function()
    local sw = luaswitch.switch "ports"
    local ports, e = hosts(sw, { "a", "b" })
    for _ = 3, 4095 do assert.truthy(sw:port { kind = "patch" }) end -- loose cables: down
    local last = sw:port { kind = "socketpair", name = "last" }
    local el = last:endpoint()
    eps[#eps + 1] = el
    assert.equal(4096, #sw:ports())
    collectgarbage(); collectgarbage()
    local fds = S.fd_count()
    for _, kind in ipairs { "patch", "socketpair" } do
      local p, msg, code = sw:port { kind = kind }
      assert.is_nil(p)
      assert.equal("EMFILE", code)
      assert.equal("EMFILE: too many open files (limit of 4096 ports per switch reached)", msg)
    end
    collectgarbage(); collectgarbage()
    fds_back_to(fds) -- the refused socketpair closed both its ends
    assert.equal(4096, #sw:ports())
    -- a broadcast from a reaches b and the 4096th port (the loose cables are down)
    e.a:send(S.frame(1, S.BCAST))
    assert.truthy(e.b:recv(1))
    assert.truthy(el:recv(1))
    e.b:send(S.frame(2, 1))
    assert.truthy(e.a:recv(1))
    -- closing a port makes room for one more, and only one
    sw:ports()[3]:close()
    assert.truthy(sw:port { kind = "socketpair", name = "c" })
    assert.is_nil(sw:port { kind = "patch" })
    S.audit(sw)
  end)

  it("4096 switches per runtime: the next is refused with EMFILE; closing one makes room", function()
    luaswitch.start()
    collectgarbage(); collectgarbage()
    local fds, threads = S.fd_count(), S.thread_count()
    local all = {}
    for i = 1, 4096 do all[i] = assert(luaswitch.switch("s" .. i)) end
    local sw, msg, code = luaswitch.switch "one too many"
    assert.is_nil(sw)
    assert.equal("EMFILE", code)
    assert.equal("EMFILE: too many open files (limit of 4096 switches reached)", msg)
    assert.equal(4096, #luaswitch.switches())
    all[100]:close()
    local again = assert(luaswitch.switch "again")
    -- and it forwards
    local _, e = hosts(again, { "a", "b" })
    e.a:send(S.frame(1, S.BCAST))
    assert.truthy(e.b:recv(1))
    for _, s in ipairs(luaswitch.switches()) do s:close() end
    for _, ep in pairs(eps) do ep:close() end
    eps = {}
    collectgarbage(); collectgarbage()
    fds_back_to(fds)
    assert.equal(threads, S.thread_count())
  end)

  it("max_macs: 16,777,216 is accepted, one more is an error; a reached cap refuses with ENOSPC", function()
    local big = luaswitch.switch { name = "big", max_macs = 16777216 }
    assert.equal(16777216, big:config().max_macs)
    raises("luaswitch.switch: bad option 'max_macs' %(must be between 1 and 16777216, got 16777217%)",
      function() luaswitch.switch { max_macs = 16777217 } end)
    raises("set: bad option 'max_macs' %(must be between 1 and 16777216, got 16777217%)",
      function() big:set { max_macs = 16777217 } end)
    assert.equal(16777216, big:config().max_macs) -- unchanged
    local bp = big:port { kind = "patch", max_macs = 16777216 }
    assert.equal(16777216, bp:info().max_macs)
    raises("set: bad option 'max_macs' %(must be between 0 and 16777216, got 16777217%)",
      function() bp:set { max_macs = 16777217 } end)

    -- a cap reached with evict = "refuse": learning stops, a dynamic fdb_add is refused
    local sw = luaswitch.switch { name = "cap", max_macs = 1000, evict = "refuse" }
    local ports, e = hosts(sw, { "a", "x" })
    local full = {}
    sw:on("table_full", function(ev) full[#full + 1] = ev end)
    local job = e.x:start_sending { frame = S.frame(1, 99), count = 1500, random_src = true, seed = 3 }
    assert.equal(1500, job:wait().frames)
    S.eventually(function() return ports.x:stats().rx_frames == 1500 end, 10, "the flood")
    e.a:drain()
    assert.equal(1000, sw:stats().fdb.dynamic)
    assert.equal(500, sw:stats().fdb.refused)
    S.eventually(function() return #full > 0 end, 5, "a table_full event")
    assert.equal("switch", full[1].scope)
    local ok, msg, code = sw:fdb_add(S.mac(7), ports.a, { dynamic = true })
    assert.is_nil(ok)
    assert.equal("ENOSPC", code)
    assert.equal("ENOSPC: no space left on device (table full)", msg)
    -- static entries do not count against max_macs
    for i = 1, 100 do assert.is_true(sw:fdb_add(S.mac(1000 + i), ports.a)) end
    assert.equal(100, sw:stats().fdb.static)
    -- known hosts still get unicast
    local echo, want = S.frame(1001, 1002), S.frame(5, 1001)
    e.a:send(echo) -- static on a itself: not echoed
    e.x:send(want)
    local f, skipped = S.await(e.a, want) -- (skipping any late copy of the flood a was stalled on)
    assert.equal(want, f)
    for _, g in ipairs(skipped) do assert.are_not.equal(echo, g) end
  end)

  it("1024 rules per port and direction: 1025 are refused and the previous set stays", function()
    local sw = luaswitch.switch "rules"
    local ports, e = hosts(sw, { "a", "b" })
    for _, dir in ipairs { "in", "out" } do
      local max = {}
      for i = 1, 1024 do max[i] = { match = "udp port " .. i, action = "count" } end
      ports.a:filter(dir, max)
      assert.equal(1024, #ports.a:filter(dir))
      max[1025] = { action = "drop" }
      raises("at most 1024 rules per port and direction, got 1025", function() ports.a:filter(dir, max) end)
      assert.equal(1024, #ports.a:filter(dir))
    end
    e.a:send(S.frame(1, S.BCAST))
    assert.truthy(e.b:recv(1))
    e.b:send(S.frame(2, 1))
    assert.truthy(e.a:recv(1))
  end)

  it("names of 63 bytes: one more is an error naming the option", function()
    local sw = luaswitch.switch(("s"):rep(63))
    assert.equal(("s"):rep(63), sw.name)
    assert.equal(("p"):rep(63), sw:port { kind = "patch", name = ("p"):rep(63) }.name)
    raises("luaswitch.switch: bad option 'name' %(longer than 63 bytes%)", function() luaswitch.switch(("s"):rep(64)) end)
    raises("port: bad option 'name' %(longer than 63 bytes%)", function() sw:port { kind = "patch", name = ("p"):rep(64) } end)
  end)

  it("10,000 rules on a port are refused at once with the limit named; the previous set stays", function()
    local sw = luaswitch.switch "rules10k"
    local ports, e = hosts(sw, { "a", "b" })
    ports.a:filter("in", { { match = "udp port 53", action = "drop" } })
    local many = {}
    for i = 1, 10000 do many[i] = { match = "host 10.0." .. (i // 256) .. "." .. (i % 256), action = "drop" } end
    local t0 = luaswitch.monotime()
    raises("at most 1024 rules per port and direction, got 10000", function() ports.a:filter("in", many) end)
    assert.is_true(luaswitch.monotime() - t0 < 1) -- refused before compiling anything
    local now = ports.a:filter("in")
    assert.equal(1, #now)
    assert.equal("udp port 53", now[1].match)
    e.a:send(S.frame(1, S.BCAST))
    assert.truthy(e.b:recv(1))
  end)

  it("the event ring (65,536 events): a full ring drops and counts, and Lua gets a lost event with the count", function()
    local sw = luaswitch.switch { name = "ring", max_macs = 100000 }
    local ports, e = hosts(sw, { "a", "x" })
    ports.x:set { learn_limit = 0 } -- at full speed: the ring, not the port, must give way
    ports.a:set { txqlen = 65536 } -- a's sink thread may be starved for a while: a's queue waits
    luaswitch.dispatch(0)
    local learned, lost = 0, {}
    sw:on("learn", function() learned = learned + 1 end)
    luaswitch.on("lost", function(ev) lost[#lost + 1] = ev end)
    local lost_before = luaswitch.info().events_lost
    -- 70,000 new source MACs, one learn event each, while Lua does not dispatch
    local N = 70000
    local sink = e.a:start_receiving()
    local job = e.x:start_sending { frame = S.frame(1, 2), count = N, random_src = true, seed = 11 }
    assert.equal(N, job:wait { timeout = 60 }.frames)
    received(ports.x, N, 60)
    local fdb = sw:stats().fdb
    assert.is_true(fdb.learned > 65536)
    local dropped = luaswitch.info().events_lost - lost_before
    assert.is_true(dropped >= fdb.learned - 65536, "dropped " .. dropped)
    -- the data plane kept forwarding meanwhile (a flooded every one of them)
    assert.equal(N, sink:wait { frames = N, timeout = 30 }.frames)
    -- now Lua dispatches: what fit in the ring, then one lost event with the count
    local deadline = luaswitch.monotime() + 10
    while learned + (lost[1] and lost[1].count or 0) < fdb.learned and luaswitch.monotime() < deadline do
      luaswitch.dispatch(0.01)
    end
    assert.equal(1, #lost)
    assert.equal(dropped, lost[1].count)
    assert.equal(fdb.learned, learned + lost[1].count)
    assert.is_true(learned <= 65536)
    -- and the ring works again
    e.a:send(S.frame(3, S.BCAST))
    S.eventually(function() return learned == fdb.learned - dropped + 1 end, 5, "a learn event after the loss")
  end)

  it("1,000,000 frames waiting on one impairment is the largest limit; one more is an error; a reached limit drops (queue_full)", function()
    local sw = luaswitch.switch "imp"
    local ports, e = hosts(sw, { "a", "b" })
    ports.b:impair { delay = 10, limit = 1000000 }
    assert.equal(1000000, ports.b:impair().out.limit)
    raises("limit", function() ports.b:impair { delay = 10, limit = 1000001 } end)
    assert.equal(1000000, ports.b:impair().out.limit)
    ports.b:impair { delay = 10, limit = 100 }
    assert.is_true(sw:fdb_add(S.mac(2), ports.b))
    local job = e.a:start_sending { frame = S.frame(1, 2), count = 150 }
    assert.equal(150, job:wait().frames)
    received(ports.a, 150, 10)
    local imp = ports.b:impair().out
    assert.equal(100, imp.waiting)
    assert.equal(50, imp.stats.queue_full)
    ports.b:impair(nil) -- the waiting frames leave at once
    assert.equal(100, #S.collect(e.b, 0.2))
  end)

  it("frames of 65,536 bytes cross stream and datagram ports at MTU 65,514; one byte more does not", function()
    raises("port: bad option 'mtu' %(must be between 68 and 65514, got 65515%)",
      function() luaswitch.switch "m":port { kind = "patch", mtu = 65515 } end)
    raises("port: bad option 'mtu' %(must be between 68 and 65514, got 67%)",
      function() luaswitch.switch "m2":port { kind = "patch", mtu = 67 } end)
    local sw = luaswitch.switch "jumbo"
    assert.equal(68, sw:port { kind = "patch", mtu = 68 }:info().mtu)
    local dir = S.tmpdir()
    local s1 = sw:port { kind = "stream", name = "s1", listen = dir .. "/s1.sock", mtu = 65514 }
    local s2 = sw:port { kind = "stream", name = "s2", listen = dir .. "/s2.sock", mtu = 65514 }
    local d = sw:port { kind = "socketpair", name = "d", mtu = 65514 }
    local e1 = assert(luaswitch.endpoint { connect = dir .. "/s1.sock" })
    local e2 = assert(luaswitch.endpoint { connect = dir .. "/s2.sock" })
    local ed = d:endpoint()
    eps[#eps + 1], eps[#eps + 2], eps[#eps + 3] = e1, e2, ed
    S.eventually(function() return s1:state() == "up" and s2:state() == "up" end, 5, "stream peers")
    -- the largest frame: 14 + 2 tags + 65,514 bytes of payload = 65,536
    local biggest = frame.ethernet { src = frame.mac(1), dst = frame.BROADCAST, tags = { { vid = 10, tpid = 0x88a8 }, { vid = 20 } },
                                     size = 65536 }
    assert.equal(65536, #biggest)
    assert.is_true(e1:send(biggest))
    assert.equal(biggest, e2:recv(2))
    assert.equal(biggest, ed:recv(2))
    -- and from a datagram port
    local back = frame.ethernet { src = frame.mac(2), dst = frame.mac(1),
                                  tags = { { vid = 10, tpid = 0x88a8 }, { vid = 20 } }, size = 65536 }
    assert.is_true(ed:send(back))
    assert.equal(back, e1:recv(2))
    -- one more byte: a stream length above 65,536 closes that connection (drops.framing)
    e1:send_raw(("\0\1\0\1"):rep(1)) -- length 65,537
    S.eventually(function() return s1:stats().drops.framing == 1 end, 5, "the framing drop")
    assert.equal("EOF", select(3, e1:recv(2)))
    S.eventually(function() return s1:state() == "down" end, 5, "s1 down")
    -- a 65,537-byte datagram is cut by the receive buffer and dropped as oversize
    local peer = dir .. "/py.sock"
    local u = sw:port { kind = "unix", name = "u", path = dir .. "/u.sock", peer = peer }
    -- the sender stays until the switch counted the drop: a datagram from a peer already
    -- gone is dropped as bad_peer instead (the switch cannot connect back to it)
    local py = ([[python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind("%s"); s.sendto(b"\xff" * 65537, "%s"); sys.stdin.read()']]):format(peer, dir .. "/u.sock")
    local proc = assert(io.popen(py, "w"))
    local seen = luaswitch.wait_until(function() return u:stats().drops.oversize == 1 end, 5)
    assert.is_true(proc:close())
    assert.truthy(seen, "the oversize drop")
    assert.equal(0, u:stats().drops.bad_peer)
    assert.is_nil(ed:recv(0.05))
    -- the switch goes on: a new connection to s1 forwards again
    e1:close()
    e1 = assert(luaswitch.endpoint { connect = dir .. "/s1.sock" })
    eps[#eps + 1] = e1
    S.eventually(function() return s1:state() == "up" end, 5, "s1 again")
    e1:send(S.frame(1, S.BCAST))
    assert.truthy(ed:recv(2))
  end)

  it("txqlen 65,536: a queue to a peer that stops reading fills to exactly that, then drops (tx_full)", function()
    local sw = luaswitch.switch "txq"
    raises("port: bad option 'txqlen' %(must be between 1 and 65536, got 65537%)",
      function() sw:port { kind = "patch", txqlen = 65537 } end)
    local ports, e = hosts(sw, { "a", "b" })
    raises("set: bad option 'txqlen' %(must be between 1 and 65536, got 65537%)",
      function() ports.b:set { txqlen = 65537 } end)
    ports.b:set { txqlen = 65536 }
    assert.equal(65536, ports.b:info().txqlen)
    local rss0 = S.rss_kb()
    assert.is_true(sw:fdb_add(S.mac(2), ports.b))
    local N = 70000
    local job = e.a:start_sending { frame = S.frame(1, 2), count = N, seq_offset = 14 }
    assert.equal(N, job:wait { timeout = 60 }.frames)
    received(ports.a, N, 60)
    local st, info = ports.b:stats(), ports.b:info()
    assert.equal(65536, info.queued)
    assert.is_true(st.drops.tx_full > 0)
    assert.equal(N, st.tx_frames + st.drops.tx_full + info.queued)
    -- the peer reads again: every queued frame arrives, in order
    local sink = e.b:start_receiving { seq_offset = 14 }
    local got = sink:wait { frames = st.tx_frames + 65536, timeout = 60 }
    assert.equal(st.tx_frames + 65536, got.frames)
    assert.equal(0, got.reordered)
    assert.equal(0, ports.b:info().queued)
    -- the queue held about 140 MB of frame buffers; drained, the memory goes back to the
    -- system but for the pool's bounded cache (8192 small buffers, about 17 MB): the
    -- runtime trims the allocator after the pool freed the rest (without it, glibc kept
    -- all of it resident)
    if not S.SANITIZER then
      local cache_kb = 8192 * (2048 + 64) // 1024
      settle(function() return S.rss_kb() <= rss0 + cache_kb + 8192 end, 5,
        ("RSS to come back after the drain (%d kB before, %d kB now)"):format(rss0, S.rss_kb()))
    end
  end)

  it("vxlan: 256 remotes at creation, 4096 in all; a flood reaches all 4096; beyond, ENOSPC", function()
    local base = 30000 + S.pid() % 20000
    local sw = luaswitch.switch "vx"
    local many = {}
    for i = 1, 257 do many[i] = "127.0.0.1:" .. (20000 + i) end
    raises("port: bad option 'remotes' %(at most 256 remotes%)",
      function() sw:port { kind = "vxlan", vni = 1, bind = "127.0.0.1:" .. base, remotes = many } end)
    many[257] = nil
    local vx = assert(sw:port { kind = "vxlan", name = "vx", vni = 1, bind = "127.0.0.1:" .. base, remotes = many })
    -- a real VTEP as the 4096th remote
    local far = assert(luaswitch.endpoint { udp = "127.0.0.1:" .. (base + 1), peer = "127.0.0.1:" .. base })
    eps[#eps + 1] = far
    for i = 257, 4095 do assert.is_true(vx:vxlan_flood("127.0.0.1:" .. (20000 + i))) end
    assert.is_true(vx:vxlan_flood("127.0.0.1:" .. (base + 1)))
    local ok, msg, code = vx:vxlan_flood("127.0.0.2:1")
    assert.is_nil(ok)
    assert.equal("ENOSPC", code)
    assert.matches("^ENOSPC: no space left on device %(vxlan_flood", msg)
    ok, msg, code = vx:vxlan_add(frame.mac(50), "127.0.0.2:2")
    assert.is_nil(ok)
    assert.equal("ENOSPC", code)
    assert.is_true(vx:vxlan_add(frame.mac(51), "127.0.0.1:20001")) -- a known remote is fine
    -- a broadcast is replicated to every remote, 64 datagrams per sendmmsg
    local ports, e = hosts(sw, { "a" })
    e.a:send(S.frame(1, S.BCAST))
    local got = assert(far:recv(5))
    assert.equal(S.frame(1, S.BCAST), got:sub(9))
    S.eventually(function() return vx:stats().tx_frames + vx:stats().drops.tx_error == 1 end, 5, "the flood")
    assert.equal(0, vx:info().queued)
    -- a frame from a 4097th VTEP is forwarded; its inner MAC is not learned (no room)
    local stranger = assert(luaswitch.endpoint { udp = "127.0.0.3:" .. (base + 2), peer = "127.0.0.1:" .. base })
    eps[#eps + 1] = stranger
    local hdr = "\8\0\0\0\0\0\1\0"
    stranger:send(hdr .. S.frame(77, S.BCAST))
    assert.equal(S.frame(77, S.BCAST), e.a:recv(2))
    far:send(hdr .. S.frame(78, S.BCAST)) -- a known VTEP: learned
    assert.equal(S.frame(78, S.BCAST), e.a:recv(2))
    S.eventually(function()
      for _, r in ipairs(vx:vxlan_fdb()) do if r.mac == frame.mac(78) then return true end end
    end, 5, "the inner MAC of a known VTEP")
    for _, r in ipairs(vx:vxlan_fdb()) do assert.are_not.equal(frame.mac(77), r.mac) end
  end)
end)
