-- The runtime: starting and stopping the data-plane thread, resources left behind,
-- the clock, event delivery (fileno, dispatch, handlers), and object life cycle.

local luaswitch = require "luaswitch"
local S = require "support"

describe("runtime", function()
  after_each(function()
    luaswitch.stop()
    S.cleanup()
  end)

  it("starts, stops and starts again, leaving no thread, fd or socket file behind", function()
    -- warm up once: libuv opens a process-wide signal-lock pipe on its first loop
    luaswitch.start()
    luaswitch.stop()
    local dir = S.tmpdir()
    local threads0, fds0 = S.thread_count(), S.fd_count()
    for round = 1, 3 do
      local sw = luaswitch.switch("r" .. round)
      local a = sw:port { kind = "socketpair", name = "a" }
      local b = sw:port { kind = "unix", name = "b", path = dir .. "/b.sock", peer = dir .. "/vm.sock" }
      local ea = a:endpoint()
      local sw2 = luaswitch.switch("other" .. round)
      sw2:port { kind = "socketpair", name = "x" }
      assert.is_true(luaswitch.running())
      assert.equal(threads0 + 1, S.thread_count())
      ea:send(S.frame(1, S.BCAST))
      assert.truthy(b)
      luaswitch.stop()
      ea:close()
      assert.is_false(luaswitch.running())
      assert.is_true(sw.closed and sw2.closed and a.closed and b.closed)
      -- pthread_join returns when the thread's tid futex is cleared, a moment before the
      -- kernel reaps the task and /proc stops counting it: wait for that, with a deadline
      luaswitch.wait_until(function() return S.thread_count() == threads0 end, 2)
      assert.equal(threads0, S.thread_count())
      assert.equal(fds0, S.fd_count())
      assert.is_not_true(os.execute("test -e " .. dir .. "/b.sock"))
    end
  end)

  it("closes everything when the Lua state closes", function()
    local dir = S.tmpdir()
    local script = ([[
      package.path = %q
      package.cpath = %q
      local luaswitch = require "luaswitch"
      local sw = luaswitch.switch "gc"
      sw:port { kind = "unix", name = "u", path = %q }
      -- no close: the state closing must tear it down
      os.exit(0, true)
    ]]):format(package.path, package.cpath, dir .. "/u.sock")
    local f = io.open(dir .. "/s.lua", "w")
    f:write(script)
    f:close()
    assert.is_true(os.execute(S.LUA .. " " .. dir .. "/s.lua"))
    assert.is_not_true(os.execute("test -e " .. dir .. "/u.sock"))
  end)

  it("reports the data-plane thread's priority and its busiest loop iteration", function()
    local t0 = luaswitch.monotime()
    local sw = luaswitch.switch "busy"
    local a = sw:port { kind = "socketpair", name = "a" }
    sw:port { kind = "socketpair", name = "b" }
    a:endpoint():start_sending { frame = S.frame(1, S.BCAST), count = 5000 }:wait()
    local info
    S.eventually(function() info = luaswitch.info(); return info.max_busy > 0 end, 5, "a busy iteration")
    -- root (as CI runs) may raise the thread's priority; anyone else keeps the default
    local p = io.popen("id -u")
    local uid = p:read("l")
    p:close()
    assert.equal(uid == "0" and -10 or 0, info.dp_nice)
    assert.is_true(info.max_busy < 5, "busiest iteration " .. info.max_busy .. " s")
    assert.is_true(info.max_busy_at >= t0 and info.max_busy_at <= luaswitch.monotime())
  end)

  it("has a manual clock that only advance() moves", function()
    assert.equal("real", luaswitch.clock())
    local t0 = luaswitch.now()
    assert.equal("manual", luaswitch.clock("manual"))
    local m0 = luaswitch.now()
    assert.is_true(m0 >= t0)
    luaswitch.dispatch(0.05)
    assert.equal(m0, luaswitch.now())
    luaswitch.advance(2.5)
    assert.equal(m0 + 2.5, luaswitch.now())
    assert.equal("real", luaswitch.clock("real"))
    assert.is_true(luaswitch.now() >= m0 + 2.5) -- never goes back
    assert.has_error(function() luaswitch.advance(1) end,
      "advance: the clock is not manual (call luaswitch.clock(\"manual\"))")
    assert.has_error(function() luaswitch.advance(-1) end)
    assert.has_error(function() luaswitch.clock("fast") end)
  end)

  it("signals pending events on fileno() and dispatches them", function()
    local sw = luaswitch.switch "ev"
    local a = sw:port { kind = "socketpair", name = "a" }
    sw:port { kind = "socketpair", name = "b" }
    local ea = a:endpoint()
    local fd = luaswitch.fileno()
    assert.is_true(fd >= 0)
    luaswitch.dispatch(0)
    assert.is_false(luaswitch.core.wait(0)) -- poll(fileno): nothing pending
    local learned = {}
    sw:on("learn", function(ev) learned[#learned + 1] = ev.mac end)
    ea:send(S.frame(1, S.BCAST))
    assert.is_true(luaswitch.core.wait(2)) -- poll(fileno) wakes up
    assert.same({}, learned) -- handlers run only from dispatch
    assert.equal(1, luaswitch.dispatch(0))
    assert.same({ S.mac(1) }, learned)
    assert.is_false(luaswitch.core.wait(0))
    assert.equal(0, luaswitch.dispatch(0))
    assert.equal(fd, luaswitch.fileno())
  end)

  it("core.wait(timeout, fds) wakes up for a frame on an endpoint as well as for events", function()
    local sw = luaswitch.switch "wfd"
    local a = sw:port { kind = "socketpair", name = "a" }
    local b = sw:port { kind = "socketpair", name = "b" }
    local ea, eb = a:endpoint(), b:endpoint()
    luaswitch.dispatch(0)
    local ev, fds = luaswitch.core.wait(0, { eb:fileno() })
    assert.is_false(ev)
    assert.is_false(fds)
    ea:send(S.frame(1, S.BCAST))
    local t0 = luaswitch.monotime()
    repeat ev, fds = luaswitch.core.wait(2, { ea:fileno(), eb:fileno() }) until fds or luaswitch.monotime() - t0 > 2
    assert.is_true(fds) -- the flood reached b's endpoint
    assert.truthy(eb:recv(0))
    luaswitch.dispatch(0)
    assert.has_error(function() luaswitch.core.wait(0, { "x" }) end)
    ea:close(); eb:close(); sw:close()
  end)

  it("runs every handler, reports an erroring one and keeps forwarding", function()
    local sw = luaswitch.switch "h"
    local a = sw:port { kind = "socketpair", name = "a" }
    local b = sw:port { kind = "socketpair", name = "b" }
    local ea, eb = a:endpoint(), b:endpoint()
    local reports, calls = {}, {}
    local old = luaswitch.report
    luaswitch.report = function(msg) reports[#reports + 1] = msg end
    sw:on("learn", function() calls[#calls + 1] = "first"; error("boom") end)
    local second = sw:on("learn", function() calls[#calls + 1] = "second" end)
    luaswitch.on("learn", function() calls[#calls + 1] = "global" end)
    ea:send(S.frame(1, S.BCAST))
    assert.truthy(eb:recv(1))
    luaswitch.dispatch(1)
    luaswitch.report = old
    luaswitch.off("learn")
    assert.same({ "first", "second", "global" }, calls)
    assert.equal(1, #reports)
    assert.matches("error in 'learn' handler", reports[1])
    assert.matches("boom", reports[1])
    assert.matches("stack traceback", reports[1])
    assert.matches("runtime_spec.lua:%d+", reports[1])
    assert.equal(1, sw:off("learn", second))
    -- forwarding goes on
    eb:send(S.frame(2, 1))
    assert.truthy(ea:recv(1))
  end)

  it("prints every object", function()
    local sw = luaswitch.switch "p"
    local a = sw:port { kind = "socketpair", name = "a" }
    local ep = a:endpoint()
    assert.equal('luaswitch.switch "p" (1 port)', tostring(sw))
    assert.equal('luaswitch.port "a" (socketpair on "p")', tostring(a))
    assert.matches("^luaswitch.endpoint %(fd %d+%)$", tostring(ep))
    local job = ep:start_receiving()
    assert.equal("luaswitch.job (sink, running)", tostring(job))
    job:stop()
    assert.equal("luaswitch.job (sink, finished)", tostring(job))
    ep:close()
    assert.equal("luaswitch.endpoint (closed)", tostring(ep))
    a:close()
    assert.equal('luaswitch.port "a" (socketpair, closed)', tostring(a))
    sw:close()
    assert.equal('luaswitch.switch "p" (closed)', tostring(sw))
  end)

  it("closes objects with <close>", function()
    local sw
    do
      local s <close> = luaswitch.switch "tbc"
      sw = s
      assert.is_false(sw.closed)
    end
    assert.is_true(sw.closed)
  end)

  it("lists open switches and ports in creation order", function()
    local s1, s2 = luaswitch.switch "one", luaswitch.switch "two"
    local a = s1:port { kind = "socketpair", name = "a" }
    local b = s1:port { kind = "socketpair" }
    assert.same({ s1, s2 }, luaswitch.switches())
    assert.same({ a, b }, s1:ports())
    assert.matches("^socketpair%d+$", b.name)
    assert.equal(s1, a.switch)
    s2:close()
    assert.same({ s1 }, luaswitch.switches())
  end)

  it("reports runtime counters", function()
    local info = luaswitch.info()
    assert.is_false(info.running)
    local sw = luaswitch.switch "i"
    sw:port { kind = "socketpair", name = "a" }
    info = luaswitch.info()
    assert.is_true(info.running)
    assert.equal(1, info.switches)
    assert.equal("real", info.clock)
    assert.equal(0, info.events_lost)
  end)
end)
