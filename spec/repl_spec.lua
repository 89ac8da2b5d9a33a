-- The REPL of `luaswitch -i`, typed into through a real terminal (tmux): the FDB as
-- columns, Tab completion, multi-line statements, errors, Ctrl-C at the prompt and during a
-- command, Ctrl-D and the teardown after it, event handlers running while the prompt waits,
-- history — all while a background sender pushes frames through the switch at full speed
-- and the receiver must get every one of them.

local S = require "support"
local Term = require "tmux_pane"

local BIN = os.getenv("LUASWITCH_BIN") or "build/luaswitch"

-- A lab: three socketpair ports; a sender at full speed from a to b (sequence-numbered)
-- and a sink on b, both on background threads; a unix port whose socket file shows the
-- teardown; result() stops the sender and reports what the sink got.
local LAB = [[
luaswitch = require "luaswitch"
local frame = require "luaswitch.frame"
sw = luaswitch.switch "lab"
local a = sw:port { kind = "socketpair", name = "a" }
-- b's queue holds 3 s of the paced flood: a sink thread starved past the stall time on a
-- busy machine (the REPL spins a core in one test) must not cost frames here
local b = sw:port { kind = "socketpair", name = "b", txqlen = 65536 }
local c = sw:port { kind = "socketpair", name = "c" }
sw:port { kind = "unix", name = "vm", path = %q }
local ea, eb = a:endpoint(), b:endpoint()
ec = c:endpoint()
eb:send(frame.ethernet { src = frame.mac(2), dst = frame.BROADCAST, size = 60 })
luaswitch.wait_until(function() return #sw:fdb() == 1 end)
sink = eb:start_receiving { seq_offset = 14 }
sender = ea:start_sending { frame = frame.ethernet { src = frame.mac(1), dst = frame.mac(2), size = 64 },
                            seq_offset = 14, rate = 20000 }
function announce(n)  -- a new host on port c: a learn event
  ec:send(frame.ethernet { src = frame.mac(n), dst = frame.BROADCAST, size = 60 })
end
function result()
  local sent = sender:stop()
  local got = sink:wait { frames = sent.frames, timeout = 20 }
  return ("sent %%d, received %%d in order, %%d missing"):format(sent.frames, got.in_order, got.gaps)
end
]]

describe("luaswitch -i", function()
  local dir, term

  local function start(extra_script)
    local script = dir .. "/lab.lua"
    local f = assert(io.open(script, "w"))
    f:write(LAB:format(dir .. "/vm.sock"), extra_script or "")
    f:close()
    term = Term.start(("env HOME=%s %s -i %s"):format(dir, BIN, script), dir)
    term:wait_for("Ctrl-D leaves")
    term:wait_for("\n> ")
  end

  before_each(function()
    dir = S.tmpdir()
  end)

  after_each(function()
    if term then term:close() end
    term = nil
    S.cleanup()
  end)

  it("prints the FDB as aligned columns and completes sw:fd<Tab>, forwarding every frame meanwhile", function()
    start()
    term:line("sw:fdb()")
    local s = term:wait_for("(2 entries)")
    -- a header, then one row per entry, columns aligned (values start under their header)
    local header = s:match("\n(mac +vlan +port +age +hits +static +sticky)\n")
    assert.truthy(header, s)
    local row1 = s:match("\n(02:00:00:00:00:01 [^\n]+)\n")
    local row2 = s:match("\n(02:00:00:00:00:02 [^\n]+)\n")
    assert.truthy(row1 and row2, s)
    assert.equal(header:find("port"), row1:find(" a ") + 1)
    assert.equal(header:find("port"), row2:find(" b ") + 1)
    assert.equal(header:find("static"), row2:find("false")) -- text to the left
    assert.equal(header:find("hits") + #"hits", row2:find(" false") - 1) -- numbers to the right
    assert.matches("^02:00:00:00:00:02 +0  b +[%d.]+ +%d+  false +false$", row2)

    term:type("sw:fd")
    term:key("Tab")
    term:wait_line("> sw:fdb")
    term:type("_")
    term:key("Tab", "Tab") -- ambiguous: the second Tab lists the candidates
    s = term:wait_for("sw:fdb_flush")
    assert.matches("sw:fdb_add +sw:fdb_del +sw:fdb_flush", s)
    term:key("C-c")
    term:type("luaswitch.swi")
    term:key("Tab")
    term:wait_line("> luaswitch.switch")
    term:key("C-c")

    term:line("result()")
    s = term:wait_for("missing", 30)
    local sent, inorder, missing = s:match("sent (%d+), received (%d+) in order, (%d+) missing")
    assert.truthy(sent, s)
    assert.is_true(tonumber(sent) > 1000, "the sender hardly sent anything: " .. s)
    assert.equal(sent, inorder)
    assert.equal("0", missing)
    term:key("C-d")
    assert.equal(0, term:wait_exit())
  end)

  it("continues an unfinished statement with >>, and reports syntax and runtime errors", function()
    start()
    term:line("for i = 1, 3 do")
    term:wait_for("\n>> ")
    term:line("print(i * 11)")
    term:wait_for("\n>> ", 10, 2)
    term:line("end")
    local s = term:wait_for("\n33\n")
    assert.matches(">> end\n11\n22\n33\n> ", s)
    term:line("{ name = 'x', list = { 1, 2, 3 }, nested = { deep = { deeper = true } } }")
    s = term:wait_for('{ list = { 1, 2, 3 }, name = "x", nested = { deep = { deeper = true } } }')
    term:line("{ description = ('a longer text '):rep(4), list = { 1, 2, 3 }, sw = sw }")
    s = term:wait_for('  sw = luaswitch.switch "lab" (4 ports),\n}\n')
    assert.matches('\n{\n  description = "a longer text a longer text a longer text a longer text ",\n' ..
      '  list = { 1, 2, 3 },\n  sw = luaswitch.switch "lab" %(4 ports%),\n}\n', s)
    term:line("x = = 1")
    s = term:wait_for("stdin:1: unexpected symbol near '='")
    term:line("nil + 1")
    s = term:wait_for("attempt to perform arithmetic on a nil value")
    s = term:wait_for("stdin:1: in main chunk")
    term:line("sw:fdb_add('nonsense')")
    term:wait_for("bad argument #1 to 'fdb_add' (malformed MAC address 'nonsense'")
    term:line("= 6 * 7")
    term:wait_for("\n42\n")
    assert.is_true(term:alive())
  end)

  it("clears the line on Ctrl-C at the prompt, interrupts a running command, exits on Ctrl-D", function()
    if S.SANITIZER == "thread" then return pending("signals are deferred under ThreadSanitizer") end
    start()
    term:type("this line is not run")
    term:key("C-c")
    term:line("1 + 1")
    local s = term:wait_for("\n2\n")
    assert.is_nil(s:find("unexpected symbol", 1, true))
    term:line("do local n = 0; while true do n = n + 1 end end")
    os.execute("sleep 0.3")
    term:key("C-c")
    term:wait_for("interrupted!")
    term:line("'still ' .. 'here'")
    term:wait_for("\nstill here\n")
    term:line("result()")
    s = term:wait_for("missing", 30)
    local sent, inorder = s:match("sent (%d+), received (%d+) in order")
    assert.equal(sent, inorder)
    assert.is_true(os.execute("test -S " .. dir .. "/vm.sock"))
    term:key("C-d")
    assert.equal(0, term:wait_exit())
    assert.is_not_true(os.execute("test -e " .. dir .. "/vm.sock")) -- closed at teardown
  end)

  it("runs event handlers while the prompt waits, and puts back what was typed", function()
    start([[
      sw:on("learn", function(ev) print("handler: learned " .. ev.mac .. " on " .. ev.port.name) end)
    ]])
    term:line("announce(7)") -- between lines
    term:wait_for("handler: learned 02:00:00:00:00:07 on c")
    term:type("sw:con")
    term:wait_line("> sw:con")
    -- a host on the unix port speaks up while the prompt waits with a half-typed line
    local luaswitch = require "luaswitch"
    local vm = luaswitch.endpoint { path = dir .. "/peer.sock", peer = dir .. "/vm.sock" }
    finally(function() vm:close() end)
    vm:send(S.frame(9, S.BCAST))
    -- the handler's line, then the prompt with the half-typed line put back under it
    term:wait_for("handler: learned 02:00:00:00:00:09 on vm\n> sw:con\n")
    term:type("fig().name")
    term:key("Enter")
    term:wait_for("> sw:config().name\nlab\n")
  end)

  it("keeps a history in ~/.luaswitch_history", function()
    start()
    term:line("1 + 2")
    term:wait_for("\n3\n")
    term:line("'history ' .. 'works'")
    term:wait_for("\nhistory works\n")
    term:key("C-d")
    assert.equal(0, term:wait_exit())
    local h = S.read_file(dir .. "/.luaswitch_history")
    assert.truthy(h, "no history file")
    assert.truthy(h:find("1\\040+\\0402", 1, true), h)
    assert.truthy(h:find("works", 1, true), h)
    local p = io.popen("stat -c %a " .. dir .. "/.luaswitch_history")
    assert.equal("600", p:read("l")) -- it may hold secrets typed at the prompt
    p:close()
    term:close()
    start()
    term:key("Up")
    term:wait_line("> 'history ' .. 'works'")
  end)

  it("reads lines from a pipe when stdin is not a terminal", function()
    local script = dir .. "/lab.lua"
    local f = assert(io.open(script, "w"))
    f:write(LAB:format(dir .. "/vm.sock"))
    f:close()
    local p = io.popen(("printf '%%s\\n' 'for i = 1, 2 do' 'print(i)' 'end' 'sw:fdb()' 'nil + 1' " ..
      "'result()' | HOME=%s %s -i %s 2>&1; echo rc=$?"):format(dir, BIN, script))
    local out = p:read("a")
    p:close()
    assert.matches("^1\n2\nmac +vlan +port", out)
    assert.matches("stdin:1: attempt to perform arithmetic on a nil value", out)
    local sent, inorder = out:match("sent (%d+), received (%d+) in order")
    assert.equal(sent, inorder)
    assert.matches("rc=0\n$", out)
    assert.is_not_true(os.execute("test -e " .. dir .. "/vm.sock"))
  end)
end)
