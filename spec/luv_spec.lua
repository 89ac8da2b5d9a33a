-- Event-loop integration: a luv (libuv for Lua) loop polls luaswitch.fileno() and
-- dispatches events when it becomes readable, as an application with its own loop would.

local luaswitch = require "luaswitch"
local S = require "support"
local has_luv, uv = pcall(require, "luv")

describe("luv integration", function()
  after_each(function() luaswitch.stop() end)

  it("wakes a luv loop on fileno() and dispatches learn events", function()
    assert.is_true(has_luv, "lua-luv is not installed")
    local sw = luaswitch.switch "luv"
    local a = sw:port { kind = "socketpair", name = "a" }
    sw:port { kind = "socketpair", name = "b" }
    local ea = a:endpoint()
    local learned = {}
    sw:on("learn", function(ev) learned[#learned + 1] = ev.mac end)
    local poll = uv.new_poll(luaswitch.fileno())
    local timer = uv.new_timer()
    local wakeups = 0
    poll:start("r", function()
      wakeups = wakeups + 1
      luaswitch.dispatch(0)
      if #learned == 3 then poll:stop(); timer:stop() end
    end)
    timer:start(5000, 0, function() poll:stop() end) -- deadline
    for i = 1, 3 do ea:send(S.frame(i, S.BCAST)) end
    uv.run()
    timer:close()
    poll:close()
    uv.run()
    assert.same({ S.mac(1), S.mac(2), S.mac(3) }, learned)
    assert.is_true(wakeups >= 1)
  end)
end)
