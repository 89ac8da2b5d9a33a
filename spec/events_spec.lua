-- The control plane's view of the table, through the public Lua API over socketpair
-- ports and the manual clock: every event fires exactly once per occurrence with its
-- documented fields; MAC-move storms and table-full refusals are coalesced with a count;
-- learning admission by a Lua policy (first N per port, allow-lists, asynchronous
-- answers, both defaults); per-port caps; aging per VLAN; FDB snapshots in Lua tables
-- and JSON files.

local luaswitch = require "luaswitch"
local S = require "support"

local ALL = { "learn", "move", "age", "evict", "port", "error", "table_full", "admit", "refuse",
  "punt", "sample" }

describe("events and table policy", function()
  local sw, ports, eps, rec

  local function setup(opts, names)
    sw = luaswitch.switch(opts)
    ports, eps = S.hosts(sw, names or { "a", "b", "c" })
    rec = S.record(sw, ALL)
  end

  before_each(function()
    luaswitch.clock("manual")
  end)

  after_each(function()
    S.teardown(sw, ports, eps)
    sw, ports, eps = nil, nil, nil
    luaswitch.clock("real")
    luaswitch.dispatch(0)
  end)

  -- send from host src on port p; with a broadcast, wait until every other port got it
  local function send(p, src, dst)
    eps[p]:send(S.frame(src, dst or S.BCAST))
    if dst == nil then
      for n, ep in pairs(eps) do if n ~= p then assert.truthy(ep:recv(1), "flood to " .. n) end end
    end
  end

  -- send a frame on port p's peer and wait until the switch has read it (its events may
  -- then be dispatched by settle())
  local function arrive(p, f) S.sent(ports[p], eps[p], f) end

  -- dispatch until nothing more arrives for a moment (events are asynchronous)
  local function settle()
    repeat until luaswitch.dispatch(0.05) == 0
  end

  local function count(t)
    local n = 0
    for _, ev in ipairs(rec.list) do if ev.type == t then n = n + 1 end end
    return n
  end

  it("fires learn, move, age, evict and port exactly once each, with their fields", function()
    setup { name = "ev", aging = 60, max_macs = 2, evict = "oldest" }
    send("a", 1)
    send("a", 1) -- a refresh: no event
    settle()
    assert.equal(1, count("learn"))
    local ev = rec.learn[1]
    assert.same({ "learn", sw, ports.a, S.mac(1), 0 }, { ev.type, ev.switch, ev.port, ev.mac, ev.vlan })
    assert.equal("number", type(ev.time))
    send("b", 1) -- moves
    settle()
    assert.equal(1, count("move"))
    ev = rec.move[1]
    assert.same({ ports.a, ports.b, ports.b, S.mac(1), 0 }, { ev.from, ev.to, ev.port, ev.mac, ev.folded })
    send("c", 2)
    send("c", 3) -- the cap is 2: the oldest (1) is evicted
    settle()
    assert.equal(1, count("evict"))
    assert.same({ S.mac(1), ports.b, "cap" }, { rec.evict[1].mac, rec.evict[1].port, rec.evict[1].reason })
    luaswitch.advance(61)
    settle()
    assert.equal(2, count("age"))
    for _, a in ipairs(rec.age) do assert.is_true(a.age >= 60 and a.age < 62) end
    ports.c:down()
    ports.c:up()
    settle()
    assert.equal(2, count("port"))
    assert.same({ "down", "admin", false, true }, { rec.port[1].state, rec.port[1].reason, rec.port[1].admin, rec.port[1].link })
    assert.same({ "up", "admin" }, { rec.port[2].state, rec.port[2].reason })
    eps.c:close() -- the peer hangs up
    eps.c = nil
    eps.a:send(S.frame(1, S.BCAST))
    S.eventually(function() return count("port") == 3 end, 5, "the hang-up")
    assert.same({ "down", "hangup", ports.c }, { rec.port[3].state, rec.port[3].reason, rec.port[3].port })
    settle()
    assert.equal(3, count("port"))
    assert.equal(4, count("learn")) -- 1, 2, 3, and 1 again after it aged out
    ports.c:close()
    ports.c = nil
  end)

  it("coalesces a MAC-move storm: the first move at once, then one event per second with the count folded", function()
    setup { name = "storm" }
    send("a", 9)
    for i = 1, 100 do -- one at a time: each frame a move
      send(i % 2 == 1 and "b" or "a", 9)
    end
    assert.equal(100, sw:stats().fdb.moved)
    settle()
    assert.equal(1, count("move")) -- the first; the 99 others wait for the end of the window
    assert.equal(0, rec.move[1].folded)
    luaswitch.advance(1)
    settle()
    assert.equal(2, count("move"))
    local last = rec.move[2]
    assert.same({ 99, ports.b, ports.a, S.mac(9) }, { last.folded, last.from, last.to, last.mac })
    assert.equal(99, sw:stats().moves_folded)
    assert.equal(ports.a, S.entry(sw, S.mac(9)).port)
    -- a quiet MAC moving once more, after the window: reported at once, not folded
    luaswitch.advance(2)
    send("c", 9)
    settle()
    assert.equal(3, count("move"))
    assert.equal(0, rec.move[3].folded)
  end)

  it("reports a full table once, folding the refusals of the next second into one count", function()
    setup { name = "full", max_macs = 2, evict = "refuse" }
    send("a", 1)
    send("a", 2)
    for i = 3, 12 do send("a", i) end
    settle()
    assert.equal(1, count("table_full"))
    local ev = rec.table_full[1]
    assert.same({ S.mac(3), ports.a, "switch", 1 }, { ev.mac, ev.port, ev.scope, ev.refused })
    luaswitch.advance(1)
    settle()
    assert.equal(2, count("table_full"))
    assert.same({ S.mac(12), 9 }, { rec.table_full[2].mac, rec.table_full[2].refused })
    assert.equal(10, ports.a:stats().learn_refused)
    assert.equal(10, sw:stats().fdb.refused)
  end)

  it("caps each port on its own: refuse (a table_full event for the port) or evict its oldest", function()
    setup { name = "cap", evict = "refuse" }
    ports.a:set { max_macs = 2 }
    assert.equal(2, ports.a:info().max_macs)
    send("a", 1); send("a", 2); send("a", 3)
    send("b", 4); send("b", 5); send("b", 6) -- b has no cap
    settle()
    assert.equal(2, ports.a:info().macs)
    assert.equal(3, ports.b:info().macs)
    assert.equal(1, count("table_full"))
    assert.same({ "port", S.mac(3), ports.a }, { rec.table_full[1].scope, rec.table_full[1].mac, rec.table_full[1].port })
    assert.equal(1, sw:stats().fdb.refused_port)
    sw:set { evict = "oldest" }
    send("a", 7)
    settle()
    assert.is_nil(S.entry(sw, S.mac(1)))
    assert.truthy(S.entry(sw, S.mac(7)))
    assert.equal(S.mac(1), rec.evict[1].mac)
    ports.a:set { max_macs = 1 } -- lowering evicts at once
    assert.equal(1, ports.a:info().macs)
    ports.a:set { max_macs = 0 }
    send("a", 8)
    assert.equal(2, ports.a:info().macs)
  end)

  it("admission with a policy of 2 MACs per port: the third is not learned, counted and reported", function()
    setup { name = "adm" }
    ports.a:set { admission = "flood" }
    sw:admission(luaswitch.admit_first(2))
    send("a", 1); send("a", 2)
    settle()
    send("a", 3) -- forwarded while it waits ("flood"), then refused
    settle()
    assert.equal(3, count("admit"))
    assert.equal(2, count("learn"))
    assert.equal(1, count("refuse"))
    assert.same({ S.mac(3), ports.a, 0 }, { rec.refuse[1].mac, rec.refuse[1].port, rec.refuse[1].vlan })
    assert.is_nil(S.entry(sw, S.mac(3)))
    assert.equal(1, sw:stats().refused)
    assert.equal(2, sw:stats().admitted)
    assert.equal(1, ports.a:stats().learn_refused)
    -- frames from the refused MAC are dropped and counted
    eps.a:send(S.frame(3, S.BCAST))
    eps.a:send(S.frame(1, S.BCAST))
    assert.equal(S.frame(1, S.BCAST), eps.b:recv(1))
    assert.equal(1, ports.a:stats().drops.refused)
    -- the approved ones pass and are refreshed like any learned entry
    assert.equal(ports.a, S.entry(sw, S.mac(1)).port)
    -- another port without admission learns freely
    send("b", 3)
    settle()
    assert.equal(ports.b, S.entry(sw, S.mac(3)).port)
    assert.equal(3, count("learn"))
  end)

  it("admission never waits for Lua: 'flood' forwards unlearned, 'drop' drops, until the answer", function()
    setup { name = "wait" }
    ports.a:set { admission = "flood" }
    ports.b:set { admission = "drop" }
    local asked = {}
    sw:admission(function(ev) asked[#asked + 1] = ev; return nil end) -- answer later
    eps.a:send(S.frame(1, S.BCAST))
    assert.truthy(eps.b:recv(1)) -- forwarded, not learned
    assert.truthy(eps.c:recv(1))
    eps.b:send(S.frame(2, S.BCAST))
    assert.is_nil(eps.c:recv(0.1)) -- dropped
    settle()
    assert.equal(2, #asked)
    assert.equal(0, #sw:fdb())
    assert.equal(1, ports.b:stats().drops.admission)
    arrive("b", S.frame(2, S.BCAST)) -- still pending: no second request
    settle()
    assert.equal(2, #asked)
    -- the answers
    assert.is_true(sw:admit(S.mac(1), ports.a, true))
    assert.is_true(sw:admit(S.mac(2), ports.b, true))
    assert.equal(ports.a, S.entry(sw, S.mac(1)).port)
    eps.b:send(S.frame(2, S.BCAST))
    assert.truthy(eps.c:recv(1))
    -- pending requests expire: asked again after 5 s
    arrive("a", S.frame(5, S.BCAST))
    settle()
    assert.equal(3, #asked)
    luaswitch.advance(5)
    arrive("a", S.frame(5, S.BCAST))
    settle()
    assert.equal(4, #asked)
    -- turning admission off learns normally again
    ports.a:set { admission = false }
    assert.is_false(ports.a:info().admission)
    arrive("a", S.frame(5, S.BCAST))
    settle()
    assert.equal(ports.a, S.entry(sw, S.mac(5)).port)
  end)

  it("admits by allow-list, reports a failing policy, and keeps forwarding", function()
    setup { name = "list" }
    ports.a:set { admission = "drop" }
    sw:admission(luaswitch.admit_only { "02:00:00:00:00:01", ["02-00-00-00-00-02"] = true })
    for i = 1, 3 do arrive("a", S.frame(i, S.BCAST)) end -- dropped while they wait
    settle()
    assert.is_nil(eps.b:recv(0.05))
    assert.equal(3, ports.a:stats().drops.admission)
    assert.same({ true, true, false }, { S.entry(sw, S.mac(1)) ~= nil, S.entry(sw, S.mac(2)) ~= nil, S.entry(sw, S.mac(3)) ~= nil })
    assert.equal(1, count("refuse"))
    local reports = {}
    local old = luaswitch.report
    luaswitch.report = function(m) reports[#reports + 1] = m end
    sw:admission(function() error("policy broke") end)
    arrive("a", S.frame(4, S.BCAST))
    settle()
    luaswitch.report = old
    assert.equal(1, #reports)
    assert.matches("policy broke", reports[1])
    send("a", 1) -- and the approved ones still pass
  end)

  it("gives VLANs their own aging time, and takes it back", function()
    setup({ name = "vage", vlan_aware = true, aging = 300 }, { "t", "x" })
    ports.t:vlan { mode = "trunk", allowed = { 10, 20 } }
    ports.x:vlan { mode = "trunk", allowed = { 10, 20 } }
    sw:vlan_aging(10, 10)
    assert.same({ [10] = 10 }, sw:vlan_aging())
    eps.t:send(S.frame(1, S.BCAST, { vlan = 10 }))
    eps.t:send(S.frame(2, S.BCAST, { vlan = 20 }))
    assert.truthy(eps.x:recv(1)); assert.truthy(eps.x:recv(1))
    luaswitch.advance(11)
    settle()
    assert.is_nil(S.entry(sw, S.mac(1), 10))
    assert.truthy(S.entry(sw, S.mac(2), 20))
    assert.equal(1, count("age"))
    sw:vlan_aging(10, nil)
    assert.same({}, sw:vlan_aging())
    eps.t:send(S.frame(1, S.BCAST, { vlan = 10 }))
    assert.truthy(eps.x:recv(1))
    luaswitch.advance(100)
    settle()
    assert.truthy(S.entry(sw, S.mac(1), 10)) -- back on the switch's 300 s
    -- bad input and the limit
    assert.has_error(function() sw:vlan_aging(5000, 1) end)
    assert.has_error(function() sw:vlan_aging(10, -1) end)
    for v = 1, 63 do sw:vlan_aging(v, v) end
    local ok, err = pcall(sw.vlan_aging, sw, 100, 5)
    assert.is_false(ok)
    assert.matches("at most 63 VLANs have their own aging time", err)
    assert.equal(63, #sw:vlan_aging())
  end)

  it("snapshots and restores the table, in Lua and through a JSON file", function()
    setup { name = "snap" }
    send("a", 1)
    send("b", 2)
    sw:fdb_add(S.mac(3), ports.c)
    sw:fdb_add(S.mac(4), ports.c, { sticky = true, vlan = 7 })
    local snap = sw:fdb_snapshot()
    assert.equal(4, #snap.entries)
    local dir = S.tmpdir()
    assert.is_true(sw:fdb_save(dir .. "/fdb.json"))
    local json = require "luaswitch.json"
    local f = io.open(dir .. "/fdb.json")
    local back = assert(json.decode(f:read("a")))
    f:close()
    assert.equal(4, #back.entries)
    sw:fdb_flush { static = true }
    assert.equal(0, #sw:fdb())
    local n, skipped = sw:fdb_load(dir .. "/fdb.json")
    assert.equal(4, n)
    assert.same({}, skipped)
    local got = {}
    for _, e in ipairs(sw:fdb()) do got[#got + 1] = { e.mac, e.vlan, e.port.name, e.static, e.sticky } end
    assert.same({
      { S.mac(1), 0, "a", false, false },
      { S.mac(2), 0, "b", false, false },
      { S.mac(3), 0, "c", true, false },
      { S.mac(4), 7, "c", false, true },
    }, got)
    -- into another switch that lacks port "b": those entries are skipped with a reason
    local other = luaswitch.switch "other"
    other:port { kind = "socketpair", name = "a" }
    other:port { kind = "socketpair", name = "c" }
    n, skipped = other:fdb_restore(snap)
    assert.equal(3, n)
    assert.equal(1, #skipped)
    assert.equal("no port named 'b'", skipped[1].reason)
    other:close()
    -- bad input changes nothing
    assert.has_error(function() sw:fdb_restore({ version = 1, entries = { { mac = 5 } } }) end)
    assert.has_error(function() sw:fdb_restore({ version = 2, entries = {} }) end)
    local bad = io.open(dir .. "/bad.json", "w"); bad:write('{"version": 1, "entries": [}'); bad:close()
    local r, err = sw:fdb_load(dir .. "/bad.json")
    assert.is_nil(r)
    assert.matches("bad.json: .* at byte 28", err)
    r, err = sw:fdb_load(dir .. "/missing.json")
    assert.is_nil(r)
    assert.matches("No such file", err)
    assert.equal(4, #sw:fdb())
    S.cleanup()
  end)
end)
