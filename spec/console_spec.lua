-- luaswitch.console in-process: compiling lines as lua5.4 does, pretty-printing, JSON,
-- completion, stats(), and control requests (their environment, captured print, time limit).

local luaswitch = require "luaswitch"
local console = require "luaswitch.console"
local S = require "support"

describe("luaswitch.console", function()
  local sw, ports, eps

  before_each(function()
    sw = luaswitch.switch "con"
    ports, eps = S.hosts(sw, { "a", "b" })
    eps.a:send(S.frame(1, S.BCAST))
    eps.b:send(S.frame(2, S.BCAST))
    S.eventually(function() return #sw:fdb() == 2 end, 5, "two MACs learned")
  end)

  after_each(function()
    luaswitch.stop()
    S.cleanup()
  end)

  it("compiles a line as an expression first, then as a statement, and spots unfinished ones", function()
    assert.equal(2, console.compile("1 + 1")())
    assert.equal(3, console.compile("= 1 + 2")())
    assert.is_nil(console.compile("local x = 1")())
    local fn, err, incomplete = console.compile("for i = 1, 2 do")
    assert.is_nil(fn)
    assert.equal("stdin:1: 'end' expected near <eof>", err)
    assert.is_true(incomplete)
    fn, err, incomplete = console.compile("x = = 1")
    assert.is_nil(fn)
    assert.equal("stdin:1: unexpected symbol near '='", err)
    assert.is_false(incomplete)
    fn, err = console.compile(string.dump(function() end))
    assert.is_nil(fn)
    assert.matches("binary chunk", err)
  end)

  it("pretty-prints tables nested and bounded, objects by __tostring, records as columns", function()
    assert.equal('{ 1, 2, "three", x = true }', console.pretty { 1, 2, "three", x = true })
    assert.equal("{}", console.pretty {})
    assert.equal('"a\\nb\\x00\\xff"', console.pretty("a\nb\0\255"))
    local long = console.pretty { name = ("n"):rep(60), nested = { list = { 1, 2 }, [10] = "ten" } }
    assert.equal('{\n  name = "' .. ("n"):rep(60) .. '",\n  nested = { [10] = "ten", list = { 1, 2 } },\n}', long)
    local cyc = { 1 }
    cyc.self = cyc
    assert.equal("{ 1, self = <cycle> }", console.pretty(cyc))
    local deep = { { { { { { { { "bottom" } } } } } } } }
    assert.equal("{ { { { { { {...} } } } } } }", console.pretty(deep))
    local many = {}
    for i = 1, 300 do many[i] = i end
    assert.matches("\n  200,\n  %.%.%. %(100 more%),\n}$", console.pretty(many))
    assert.equal('{ ["a key"] = 1, ["end"] = 2 }', console.pretty { ["a key"] = 1, ["end"] = 2 })
    assert.equal(('{\n  p = luaswitch.port "a" (socketpair on "con"),\n  s = %s,\n}'):format(tostring(sw)),
      console.pretty { s = sw, p = ports.a }) -- over 80 columns on one line

    local fdb = console.pretty(sw:fdb())
    local lines = {}
    for l in fdb:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal(4, #lines)
    assert.matches("^mac                vlan  port  age +hits  static  sticky$", lines[1])
    assert.matches("^02:00:00:00:00:01     0  a     %d+%.%d +%d+  false   false$", lines[2])
    assert.matches("^02:00:00:00:00:02     0  b ", lines[3])
    assert.equal("(2 entries)", lines[4])
    -- nested, the columns are indented inside the braces
    assert.matches("^{\n  fdb = {\n    mac +vlan", console.pretty { fdb = sw:fdb() })
    -- several values: tabs, or lines when one spans several
    assert.equal("1\tx\tnil", console.show(table.pack(1, "x", nil)))
    assert.is_nil(console.show(table.pack()))
  end)

  it("converts values to JSON: arrays, objects, objects of the switch, numbers, bad UTF-8, cycles", function()
    assert.equal('[1,2,3]', console.json { 1, 2, 3 })
    assert.equal('[]', console.json {})
    assert.equal('{"1":"a","3":"c"}', console.json { [1] = "a", [3] = "c" })
    assert.equal('{"a":1,"b":[true,false],"c":{"d":"x"}}', console.json { b = { true, false }, a = 1, c = { d = "x" } })
    assert.equal('[0.1,3.0,-2,null,null]', console.json { 0.1, 3.0, -2, 0 / 0, math.huge })
    assert.equal('"caf\\u00e9 \\u00ff\\u0000\\n\\"\\\\"', console.json("caf\xe9 \xff\0\n\"\\"))
    assert.equal('"café ✓"', console.json("café ✓"))
    assert.equal(('{"type":"switch","name":"con","id":%d}'):format(sw.id), console.json(sw))
    assert.equal(('{"type":"port","name":"a","id":%d,"kind":"socketpair","switch":"con"}'):format(ports.a.id),
      console.json(ports.a))
    assert.matches('^"function: ', console.json(print))
    local cyc = {}
    cyc.me = cyc
    assert.equal('{"me":"<cycle>"}', console.json(cyc))
    local shared = { 1 }
    assert.equal('[[1],[1]]', console.json { shared, shared }) -- shared is not a cycle
    local deep = {}
    local t = deep
    for _ = 1, 40 do
      t[1] = {}
      t = t[1]
    end
    assert.matches('"<too deep>"', console.json(deep))
  end)

  it("completes globals, fields and methods, through the method tables of switches and ports", function()
    _G.spec_sw, _G.spec_port, _G.spec_ep = sw, ports.a, eps.a
    finally(function() _G.spec_sw, _G.spec_port, _G.spec_ep = nil, nil, nil end)
    local fdb_methods = { "spec_sw:fdb_add", "spec_sw:fdb_del", "spec_sw:fdb_flush", "spec_sw:fdb_load",
      "spec_sw:fdb_restore", "spec_sw:fdb_save", "spec_sw:fdb_snapshot" }
    assert.same({ "spec_sw:fdb", table.unpack(fdb_methods) }, console.complete("spec_sw:fd"))
    assert.same(fdb_methods, console.complete("spec_sw:fdb_"))
    assert.same({ "spec_sw.name" }, console.complete("spec_sw.na"))
    assert.same({ "spec_port:state", "spec_port:stats" }, console.complete("spec_port:sta"))
    assert.same({ "spec_port.switch" }, console.complete("spec_port.swi"))
    assert.same({ "spec_ep:start_receiving", "spec_ep:start_sending" }, console.complete("spec_ep:start"))
    assert.same({ "luaswitch.switch", "luaswitch.switches" }, console.complete("luaswitch.swi"))
    assert.same({ "stats" }, console.complete("stat"))
    assert.same({ "string.format" }, console.complete("string.form"))
    assert.same({ "while" }, console.complete("whil"))
    assert.same({}, console.complete("nosuchglobal.x"))
    assert.same({}, console.complete("spec_sw:fdb:x"))
    assert.same({}, console.complete("1 +"))
  end)

  it("gathers every switch's and port's counters in stats()", function()
    local st = console.stats()
    local s = st.switches.con
    assert.equal(sw.id, s.id)
    assert.equal(2, s.stats.fdb.entries)
    assert.equal(1, s.ports.a.rx_frames)
    assert.equal("socketpair", s.ports.b.kind)
    assert.equal("up", s.ports.b.state)
    assert.is_true(st.runtime.running)
    assert.is_number(st.lua.handler_errors)
    local other = luaswitch.switch "con" -- same name: listed apart
    assert.truthy(console.stats().switches["con#" .. other.id])
  end)

  it("answers control requests in the globals' environment, with print captured and a time limit", function()
    _G.spec_value = 41
    finally(function() _G.spec_value, _G.spec_set = nil, nil end)
    assert.equal('{"ok":true,"result":42}', console.request("spec_value + 1"))
    assert.equal('{"ok":true,"result":null}', console.request("spec_set = stats ~= nil"))
    assert.is_true(_G.spec_set)
    assert.equal('{"ok":true,"result":null,"output":"a\\t1\\nb\\n"}', console.request("print('a', 1) print('b')"))
    assert.equal('{"ok":true,"result":"luaswitch.switch \\"con\\" (2 ports)"}',
      console.request('\\pretty "luaswitch.switches()[1]"'))
    local old = console.timeout
    console.timeout = 0.2
    finally(function() console.timeout = old end)
    local t0 = luaswitch.monotime()
    local r = console.request("while true do end")
    assert.is_true(luaswitch.monotime() - t0 < 2)
    assert.matches('^{"ok":false,"error":"request:1: request interrupted: it ran longer than 0.2 s', r)
    assert.is_nil(debug.gethook()) -- nothing left behind
    assert.equal('{"ok":true,"result":2}', console.request("1 + 1"))
  end)

  it("renders stats() as Prometheus text", function()
    local text = console.metrics()
    assert.matches("# TYPE luaswitch_port_rx_frames_total counter\n", text)
    assert.matches('\nluaswitch_port_rx_frames_total{port="a",switch="con"} 1\n', text)
    assert.matches('\nluaswitch_port_drops_total{port="b",reason="runt",switch="con"} 0\n', text)
    assert.matches('\nluaswitch_fdb_entries{switch="con"} 2\n', text)
    assert.matches('\nluaswitch_lua_handler_errors_total %d+\n', text)
    local odd = luaswitch.switch 'we"ird\\name'
    finally(function() odd:close() end)
    assert.matches('{switch="we\\"ird\\\\name"}', console.metrics(), 1, true)
  end)
end)
