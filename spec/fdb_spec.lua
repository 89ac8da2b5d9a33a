-- The MAC table through the Lua API: aging on the manual clock, refresh, static and
-- sticky entries, moves, the cap with each eviction policy, and table editing.

local luaswitch = require "luaswitch"
local S = require "support"

local hosts = S.hosts

describe("fdb", function()
  local sw, ports, eps, rec

  before_each(function()
    luaswitch.clock("manual")
    sw = luaswitch.switch { name = "fdb", aging = 300 }
    ports, eps = hosts(sw, { "a", "b", "c" })
    rec = S.record(sw)
  end)

  after_each(function()
    for _, ep in pairs(eps) do ep:close() end
    if not sw.closed then S.audit(sw) end
    sw:close()
    luaswitch.clock("real")
    luaswitch.dispatch(0)
  end)

  -- send from host `src` on port `p` and wait until every other endpoint got it
  local function send(p, src, dst)
    eps[p]:send(S.frame(src, dst or S.BCAST))
    if dst == nil then
      for n, ep in pairs(eps) do if n ~= p then assert.truthy(ep:recv(1)) end end
    end
  end

  it("learns a source MAC with its port, VLAN, age and hit count", function()
    send("a", 1)
    S.eventually(function() return #rec.learn == 1 end, 2, "learn event")
    local ev = rec.learn[1]
    assert.equal(S.mac(1), ev.mac)
    assert.equal(ports.a, ev.port)
    assert.equal(sw, ev.switch)
    assert.equal(0, ev.vlan)
    local e = S.entry(sw, S.mac(1))
    assert.same({ mac = S.mac(1), port = ports.a, vlan = 0, age = 0, hits = 0,
                  static = false, sticky = false }, e)
    luaswitch.advance(1.5)
    send("b", 2, 1)
    assert.truthy(eps.a:recv(1))
    e = S.entry(sw, S.mac(1))
    assert.equal(1.5, e.age)
    assert.equal(1, e.hits)
  end)

  it("ages an entry out after the aging time, once, and then floods to it again", function()
    send("a", 1)
    send("b", 2)
    luaswitch.advance(299)
    luaswitch.dispatch(0)
    assert.equal(0, #rec.age)
    assert.truthy(S.entry(sw, S.mac(1)))
    luaswitch.advance(2) -- 301 s
    S.eventually(function() return #rec.age == 2 end, 2, "age events")
    assert.is_nil(S.entry(sw, S.mac(1)))
    assert.equal(301, rec.age[1].age)
    luaswitch.advance(1000)
    luaswitch.dispatch(0.05)
    assert.equal(2, #rec.age) -- fired once per entry
    -- the next frame to 1 floods again (c gets a copy)
    eps.b:send(S.frame(2, 1))
    assert.truthy(eps.a:recv(1))
    assert.truthy(eps.c:recv(1))
    assert.equal(2, sw:stats().fdb.aged)
  end)

  it("refreshes an entry on traffic from its MAC", function()
    send("a", 1)
    luaswitch.advance(200)
    send("a", 1)
    luaswitch.advance(200) -- 400 s after learning, 200 after the refresh
    luaswitch.dispatch(0)
    assert.truthy(S.entry(sw, S.mac(1)))
    luaswitch.advance(101)
    S.eventually(function() return #rec.age == 1 end, 2, "age event")
    assert.is_nil(S.entry(sw, S.mac(1)))
  end)

  it("never ages static entries and never moves them", function()
    assert.is_true(sw:fdb_add(S.mac(9), ports.a))
    luaswitch.advance(100000)
    local e = S.entry(sw, S.mac(9))
    assert.truthy(e)
    assert.is_true(e.static)
    send("b", 9) -- 9 shows up on b: learning must not move it
    assert.equal(ports.a, S.entry(sw, S.mac(9)).port)
    assert.equal(1, sw:stats().fdb.pinned)
    eps.c:send(S.frame(3, 9))
    assert.truthy(eps.a:recv(1)) -- still delivered to a
    assert.is_nil(eps.b:recv(0.05))
    luaswitch.dispatch(0)
    assert.equal(0, #rec.move)
  end)

  it("ages sticky entries but never moves them", function()
    assert.is_true(sw:fdb_add(S.mac(7), ports.a, { sticky = true }))
    send("b", 7)
    assert.equal(ports.a, S.entry(sw, S.mac(7)).port)
    assert.is_true(S.entry(sw, S.mac(7)).sticky)
    luaswitch.advance(301)
    assert.is_nil(S.entry(sw, S.mac(7)))
  end)

  it("detects a move and raises one move event with both ports", function()
    send("a", 1)
    send("b", 1)
    S.eventually(function() return #rec.move == 1 end, 2, "move event")
    local ev = rec.move[1]
    assert.equal(S.mac(1), ev.mac)
    assert.equal(ports.a, ev.from)
    assert.equal(ports.b, ev.to)
    assert.equal(ports.b, ev.port)
    assert.equal(ports.b, S.entry(sw, S.mac(1)).port)
    send("b", 1)
    luaswitch.dispatch(0.05)
    assert.equal(1, #rec.move)
    assert.equal(1, sw:stats().fdb.moved)
  end)

  it("adds, deletes and flushes entries by port, VLAN and kind", function()
    sw:fdb_add(S.mac(1), ports.a)
    sw:fdb_add(S.mac(2), ports.b, { vlan = 10 })
    send("a", 3)
    send("b", 4)
    assert.equal(4, #sw:fdb())
    assert.is_true(sw:fdb_del(S.mac(2), 10))
    assert.is_false(sw:fdb_del(S.mac(2), 10))
    assert.equal(1, sw:fdb_flush { port = ports.a }) -- dynamic only by default
    assert.truthy(S.entry(sw, S.mac(1)))
    assert.equal(1, sw:fdb_flush { port = ports.a, static = true, dynamic = false })
    assert.equal(1, sw:fdb_flush())
    assert.equal(0, #sw:fdb())
  end)

  it("forgets a port's learned entries when it goes down or closes", function()
    send("a", 1)
    send("b", 2)
    sw:fdb_add(S.mac(5), ports.b)
    ports.a:down()
    assert.is_nil(S.entry(sw, S.mac(1)))
    ports.b:close()
    eps.b:close()
    eps.b = nil
    assert.equal(0, #sw:fdb())
  end)

  it("applies a lower aging time at once", function()
    send("a", 1)
    luaswitch.advance(10)
    sw:set { aging = 5 }
    assert.is_nil(S.entry(sw, S.mac(1)))
    assert.equal(5, sw:config().aging)
  end)
end)

describe("fdb cap", function()
  after_each(function()
    luaswitch.stop()
  end)

  -- a flood of `n` random source MACs from port `from`, then wait for it to be processed
  -- (beyond 10,000 new sources a second the port is held back: its learn_limit)
  local function mac_flood(ep, port, n)
    local before = port:stats().rx_frames
    local job = ep:start_sending { frame = S.frame(1, 99), count = n, random_src = true, seed = 7 }
    assert.equal(n, job:wait().frames)
    S.eventually(function() return port:stats().rx_frames >= before + n end, 10, "flood processed")
  end

  local function setup(policy)
    local sw = luaswitch.switch { name = "cap", max_macs = 1000, evict = policy }
    local ports, eps = hosts(sw, { "a", "b", "c", "x" })
    -- c and x never read: drop their copies of the flood
    ports.c:set { txqlen = 1 }
    ports.x:set { txqlen = 1 }
    eps.a:send(S.frame(1, S.BCAST))
    eps.b:send(S.frame(2, S.BCAST))
    S.collect(eps.a, 0.05); S.collect(eps.b, 0.05); eps.c:drain(); eps.x:drain()
    return sw, ports, eps
  end

  -- a -> b is unicast: b gets it, c does not. c may still get a late copy of the flood (the
  -- switch holds one for it, txqlen 1, and writes it once c's socket has room), so only the
  -- a -> b frame counts against it.
  local function unicast_ok(eps)
    local ab = S.frame(1, 2)
    local function b_gets_it() assert.equal(ab, (S.await(eps.b, ab))) end
    eps.a:send(ab)
    b_gets_it()
    eps.c:drain()
    eps.a:send(ab)
    b_gets_it()
    for _, f in ipairs(S.collect(eps.c, 0.05)) do
      assert.are_not.equal(ab, f)
    end
  end

  it("keeps the table at the cap with flat memory; 'port' evicts from the flooding port", function()
    local sw, ports, eps = setup("port")
    local sink = eps.b:start_receiving()
    ports.x:set { learn_limit = 0 } -- the flood at full speed
    -- warm up with a flood as big as the measured one: the table, the frame-buffer cache,
    -- the sockets' and threads' memory reach their working size
    mac_flood(eps.x, ports.x, 10000)
    -- (the Lua heap collected first: the flood's events are Lua garbage, not the switch's)
    collectgarbage(); collectgarbage()
    local rss0, mem0, bufs0 = S.rss_kb(), sw:stats().fdb.memory, luaswitch.info().buffer_bytes // 1024
    mac_flood(eps.x, ports.x, 10000) -- 10x the cap
    collectgarbage(); collectgarbage()
    local rss1, bufs1 = S.rss_kb(), luaswitch.info().buffer_bytes // 1024
    sink:stop()
    local st = sw:stats()
    assert.equal(1000, st.fdb.dynamic)
    assert.equal(1000, #sw:fdb())
    assert.is_true(st.fdb.evicted >= 19000)
    assert.equal(mem0, st.fdb.memory) -- the table did not grow
    if not S.SANITIZER then -- sanitizers hold freed memory (quarantine, shadow)
      -- beyond the frame-buffer cache (bounded: buf.c), which a held-back flood fills more
      local cache = math.max(0, bufs1 - bufs0)
      assert.is_true(rss1 - rss0 - cache < 4096, ("RSS grew by %d kB (buffer cache %d kB)"):format(rss1 - rss0, cache))
    end
    -- the known hosts survived: the flooding port paid for the flood
    eps.b:drain()
    unicast_ok(eps)
  end)

  it("'oldest' evicts the oldest entries first", function()
    local sw, ports, eps = setup("oldest")
    local sink = eps.b:start_receiving()
    mac_flood(eps.x, ports.x, 1500)
    sink:stop()
    local fdb = sw:fdb()
    assert.equal(1000, #fdb)
    for _, e in ipairs(fdb) do
      assert.are_not.equal(S.mac(1), e.mac)
      assert.are_not.equal(S.mac(2), e.mac)
    end
    assert.equal(502, sw:stats().fdb.evicted)
  end)

  it("'refuse' keeps what it has, counts the refusals, and still unicasts to known MACs", function()
    local sw, ports, eps = setup("refuse")
    local sink = eps.b:start_receiving()
    mac_flood(eps.x, ports.x, 5000)
    sink:stop()
    local st = sw:stats().fdb
    assert.equal(1000, st.dynamic)
    assert.equal(4002, st.refused) -- 998 learned from the flood, the rest refused
    assert.equal(0, st.evicted)
    eps.b:drain()
    unicast_ok(eps)
  end)

  it("lowering the cap evicts down to it", function()
    local sw, ports, eps = setup("oldest")
    local sink = eps.b:start_receiving()
    mac_flood(eps.x, ports.x, 500)
    sink:stop()
    sw:set { max_macs = 100 }
    assert.equal(100, #sw:fdb())
    assert.equal(100, sw:config().max_macs)
  end)
end)
