-- Handlers that misbehave: the per-handler instruction budget (luaswitch.handler_budget)
-- interrupts a runaway handler, which is reported with its event type and source:line and
-- counted, while the other handlers of the event run and frames keep forwarding; a handler
-- that yields gets a clear error instead of suspending dispatch().

local luaswitch = require "luaswitch"
local S = require "support"

describe("handler robustness", function()
  local sw, ports, eps, reports, old_report, old_budget

  before_each(function()
    sw = luaswitch.switch "hooks"
    ports, eps = S.hosts(sw, { "a", "b" })
    reports = {}
    old_report, old_budget = luaswitch.report, luaswitch.handler_budget
    luaswitch.report = function(msg) reports[#reports + 1] = msg end
  end)

  after_each(function()
    luaswitch.report, luaswitch.handler_budget = old_report, old_budget
    luaswitch.stop()
    S.cleanup()
  end)

  local function this_line() return debug.getinfo(2, "l").currentline end

  it("interrupts a handler that never returns, reports it, and runs the others", function()
    local ran = {}
    local errors0, overruns0 = luaswitch.stats.handler_errors, luaswitch.stats.handler_overruns
    sw:on("learn", function(ev) ran[#ran + 1] = "before " .. ev.mac end)
    local line = this_line() + 1
    sw:on("learn", function() while true do end end)
    sw:on("learn", function(ev) ran[#ran + 1] = "after " .. ev.mac end)
    luaswitch.on("learn", function(ev) ran[#ran + 1] = "global " .. ev.mac end)
    eps.a:send(S.frame(1, 2))
    S.eventually(function() return #ran == 3 end, 5, "the three other handlers")
    assert.same({ "before 02:00:00:00:00:01", "after 02:00:00:00:00:01", "global 02:00:00:00:00:01" },
      ran)
    assert.equal(1, #reports)
    assert.matches("'learn' handler at [^\n]*hooks_spec%.lua:" .. line .. " interrupted", reports[1])
    assert.matches("budget of 10000000 instructions %(luaswitch%.handler_budget%)", reports[1])
    assert.matches("stack traceback:\n\t[^\n]*hooks_spec%.lua:" .. line, reports[1])
    assert.equal(errors0 + 1, luaswitch.stats.handler_errors)
    assert.equal(overruns0 + 1, luaswitch.stats.handler_overruns)
    -- forwarding never noticed: the frame arrived, and so does the next one (learned now)
    assert.equal(S.frame(1, 2), eps.b:recv(1))
    eps.b:send(S.frame(2, 1))
    assert.equal(S.frame(2, 1), eps.a:recv(1))
    -- the runaway handler is still registered: the next event interrupts it again
    S.eventually(function() return #reports == 2 end, 5, "the second learn event's report")
    assert.equal(overruns0 + 2, luaswitch.stats.handler_overruns)
  end)

  it("takes its budget from luaswitch.handler_budget (0 or false: none)", function()
    local done = 0
    sw:on("learn", function()
      local x = 0
      for i = 1, 20000 do x = x + i end
      done = done + 1
    end)
    luaswitch.handler_budget = 1000
    eps.a:send(S.frame(1, 2))
    S.eventually(function() return #reports == 1 end, 5, "the report")
    assert.equal(0, done)
    assert.matches("budget of 1000 instructions", reports[1])
    luaswitch.handler_budget = 0
    eps.a:send(S.frame(3, 2))
    S.eventually(function() return done == 1 end, 5, "the handler to finish with no budget")
    luaswitch.handler_budget = false
    eps.a:send(S.frame(4, 2))
    S.eventually(function() return done == 2 end, 5, "the handler to finish with budget false")
    luaswitch.handler_budget = 1e6 -- a float with an integer value is fine
    eps.a:send(S.frame(5, 2))
    S.eventually(function() return done == 3 end, 5, "the handler to finish within 1e6")
    assert.equal(1, #reports)
    luaswitch.handler_budget = "lots"
    assert.has_error(function() luaswitch.dispatch() end,
      "luaswitch.handler_budget: a non-negative number of instructions expected, got lots")
    luaswitch.handler_budget = -1
    assert.has_error(function() luaswitch.dispatch() end,
      "luaswitch.handler_budget: a non-negative number of instructions expected, got -1")
  end)

  it("gives a handler that yields a clear error, also across a C call", function()
    local ran = 0
    local line = this_line() + 1
    sw:on("learn", function() coroutine.yield("later") end)
    sw:on("learn", function() table.sort({ 3, 2, 1 }, function() return coroutine.yield() end) end)
    sw:on("learn", function() ran = ran + 1 end)
    -- even from inside a coroutine of the caller's, dispatch() runs every handler to the end
    local co = coroutine.wrap(function()
      eps.a:send(S.frame(1, 2))
      S.eventually(function() return ran == 1 end, 5, "the last handler")
      return "finished"
    end)
    assert.equal("finished", co())
    assert.equal(2, #reports)
    assert.matches("'learn' handler at [^\n]*hooks_spec%.lua:" .. line .. " yielded: handlers run " ..
      "to completion", reports[1])
    assert.matches("error in 'learn' handler: attempt to yield across a C%-call boundary", reports[2])
    assert.matches("in function 'table%.sort'", reports[2])
    assert.equal(S.frame(1, 2), eps.b:recv(1))
  end)

  it("keeps a handler's errors and results apart from the caller's hooks", function()
    local hooked = 0
    debug.sethook(function() hooked = hooked + 1 end, "", 1)
    local ok, got = false, nil
    sw:on("learn", function(ev) got = ev.mac; ok = true end)
    eps.a:send(S.frame(9, 2))
    S.eventually(function() return ok end, 5, "the handler")
    debug.sethook()
    assert.equal("02:00:00:00:00:09", got)
    assert.equal(0, #reports)
    assert.is_true(hooked > 0) -- the caller's hook still ran in the caller
  end)
end)
