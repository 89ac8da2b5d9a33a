-- Bad input through the Lua API: every programmer error raises a message naming the
-- argument and the problem; runtime failures return nil, message, code; nothing that
-- fails changes what was there before.

local luaswitch = require "luaswitch"
local S = require "support"

describe("bad input", function()
  local sw, a

  before_each(function()
    sw = luaswitch.switch { name = "bad" }
    a = sw:port { kind = "socketpair", name = "a" }
  end)

  after_each(function()
    luaswitch.stop()
    S.cleanup()
  end)

  it("rejects a non-table, non-string switch argument", function()
    S.raises("luaswitch.switch: options table expected, got number", luaswitch.switch, 42)
  end)

  it("rejects unknown switch options", function()
    S.raises("luaswitch.switch: unknown option 'agin'", luaswitch.switch, { agin = 3 })
  end)

  it("rejects a negative aging time", function()
    S.raises("luaswitch.switch: bad option 'aging' %(must be between 0 and .-, got %-1%)",
      luaswitch.switch, { aging = -1 })
  end)

  it("rejects an aging time of the wrong type", function()
    S.raises("bad option 'aging' %(number expected, got string%)", luaswitch.switch, { aging = "300" })
  end)

  it("rejects a cap of 0", function()
    S.raises("luaswitch.switch: bad option 'max_macs' %(must be between 1 and 16777216, got 0%)",
      luaswitch.switch, { max_macs = 0 })
  end)

  it("rejects a fractional cap", function()
    S.raises("bad option 'max_macs' %(integer expected, got number%)", luaswitch.switch, { max_macs = 1.5 })
  end)

  it("rejects an unknown eviction policy", function()
    S.raises([[bad option 'evict' %(one of "refuse", "oldest", "port" expected, got "newest"%)]],
      luaswitch.switch, { evict = "newest" })
  end)

  it("rejects an over-long name", function()
    S.raises("bad option 'name' %(longer than 63 bytes%)", luaswitch.switch, { name = string.rep("n", 64) })
  end)

  it("rejects an unknown port kind", function()
    S.raises([[port: bad option 'kind' %(one of "socketpair", "unix", .-"tap", .- expected, got "tap0"%)]], function() return sw:port({ kind = "tap0" }) end)
  end)

  it("rejects a port without a kind", function()
    S.raises("port: missing option 'kind'", function() return sw:port({ name = "x" }) end)
  end)

  it("rejects options that do not belong to the port kind", function()
    S.raises("port: unknown option 'path'", function() return sw:port({ kind = "socketpair", path = "/tmp/x" }) end)
  end)

  it("rejects a unix port without a path", function()
    S.raises("port: missing option 'path' for a unix port", function() return sw:port({ kind = "unix" }) end)
  end)

  it("rejects an MTU out of range", function()
    S.raises("port: bad option 'mtu' %(must be between 68 and 65514, got 67%)", function() return sw:port({ kind = "socketpair", mtu = 67 }) end)
  end)

  it("rejects a duplicate port name and leaves the ports as they were", function()
    S.raises("port: bad option 'name' %(a port named 'a' already exists on switch 'bad'%)", function() return sw:port({ kind = "socketpair", name = "a" }) end)
    assert.same({ a }, sw:ports())
  end)

  it("rejects a truncated MAC address", function()
    S.raises("bad argument #1 to 'fdb_add' %(malformed MAC address '02:00:00:00:00'", function() return sw:fdb_add("02:00:00:00:00", a) end)
  end)

  it("rejects a MAC address with non-hex digits", function()
    S.raises("bad argument #1 to 'fdb_del' %(malformed MAC address 'zz:00:00:00:00:00'", function() return sw:fdb_del("zz:00:00:00:00:00") end)
  end)

  it("rejects a MAC address of the wrong type", function()
    S.raises("bad argument #1 to 'fdb_add' %(MAC address string expected, got number%)", function() return sw:fdb_add(12, a) end)
  end)

  it("rejects a multicast static entry", function()
    S.raises("bad argument #1 to 'fdb_add' %(a group %(multicast%) address cannot be added%)", function() return sw:fdb_add("01:00:5e:00:00:01", a) end)
  end)

  it("rejects a port that is not a port", function()
    S.raises("bad argument #2 to 'fdb_add' %(luaswitch.port expected, got string%)", function() return sw:fdb_add("02:00:00:00:00:01", "a") end)
  end)

  it("rejects a port of another switch", function()
    local other = luaswitch.switch "other"
    local x = other:port { kind = "socketpair", name = "x" }
    S.raises("bad argument #2 to 'fdb_add' %(port 'x' belongs to another switch%)", function() return sw:fdb_add("02:00:00:00:00:01", x) end)
  end)

  it("rejects a VLAN id out of range", function()
    S.raises("fdb_add: bad option 'vlan' %(must be between 0 and 4094, got 4095%)", function() return sw:fdb_add("02:00:00:00:00:01", a, { vlan = 4095 }) end)
  end)

  it("rejects unknown set() options and keeps the old configuration", function()
    sw:set { aging = 60 }
    S.raises("set: unknown option 'max_mac'", function() return sw:set({ aging = 10, max_mac = 5 }) end)
    S.raises("set: bad option 'max_macs'", function() return sw:set({ aging = 10, max_macs = -5 }) end)
    assert.same({ name = "bad", aging = 60, max_macs = 8192, evict = "oldest", vlan_aware = false,
      vlan_protocol = "802.1q", wire = false }, sw:config())
  end)

  it("rejects calls on a closed switch", function()
    sw:close()
    S.raises("calling 'fdb' on bad self %(switch 'bad' is closed%)", function() return sw:fdb() end)
    S.raises("calling 'port' on bad self %(switch 'bad' is closed%)", function() return sw:port({ kind = "socketpair" }) end)
    S.raises("calling 'stats' on bad self %(switch 'bad' is closed%)", function() return sw:stats() end)
    sw:close() -- closing twice is fine
  end)

  it("rejects calls on a closed port", function()
    a:close()
    S.raises("calling 'stats' on bad self %(port 'a' is closed%)", function() return a:stats() end)
    S.raises("calling 'up' on bad self %(port 'a' is closed%)", function() return a:up() end)
    S.raises("bad argument #2 to 'fdb_add' %(port 'a' is closed%)", function() return sw:fdb_add("02:00:00:00:00:01", a) end)
  end)

  it("rejects ports of a closed switch", function()
    sw:close()
    assert.is_true(a.closed)
    S.raises("calling 'info' on bad self %(port 'a' is closed%)", function() return a:info() end)
  end)

  it("rejects unknown event names and non-function handlers", function()
    S.raises("bad argument #1 to 'on' %(unknown event 'lern'", function() return sw:on("lern", function() end) end)
    S.raises("bad argument #2 to 'on' %(function expected, got string%)", function() return sw:on("learn", "f") end)
  end)

  it("rejects a bad dispatch timeout", function()
    S.raises("bad argument #1 to 'dispatch'", luaswitch.dispatch, -1)
  end)

  it("returns nil, message, code for a path in use", function()
    local dir = S.tmpdir()
    assert.truthy(sw:port { kind = "unix", name = "u1", path = dir .. "/s.sock" })
    local p, msg, code = sw:port { kind = "unix", name = "u2", path = dir .. "/s.sock" }
    assert.is_nil(p)
    assert.equal("EADDRINUSE", code)
    assert.equal("EADDRINUSE: address already in use (bind " .. dir .. "/s.sock)", msg)
  end)

  it("returns nil, message, code for a path too long for sun_path", function()
    local p, msg, code = sw:port { kind = "unix", name = "u", path = "/tmp/" .. string.rep("y", 110) }
    assert.is_nil(p)
    assert.equal("ENAMETOOLONG", code)
    assert.matches("^ENAMETOOLONG: name too long", msg)
  end)

  it("returns nil, message, code for a directory that does not exist", function()
    local p, msg, code = sw:port { kind = "unix", name = "u", path = "/nonexistent/dir/s.sock" }
    assert.is_nil(p)
    assert.equal("ENOENT", code)
    assert.matches("no such file or directory", msg)
    assert.same({ a }, sw:ports())
  end)

  it("rejects peer_fd on a port that is not a socketpair", function()
    local dir = S.tmpdir()
    local u = sw:port { kind = "unix", name = "u", path = dir .. "/s.sock" }
    S.raises("calling 'peer_fd' on bad self %(port 'u' is a unix port, not a socketpair%)", function() return u:peer_fd() end)
  end)

  it("rejects taking a socketpair's peer twice", function()
    local ep = a:endpoint()
    S.raises("port 'a': the peer end was already handed over", function() return a:endpoint() end)
    ep:close()
  end)

  it("rejects oversized frames and busy endpoints", function()
    local ep = a:endpoint()
    S.raises("bad argument #1 to 'send' %(frame longer than 65536 bytes%)", function() return ep:send(string.rep("x", 65537)) end)
    local job = ep:start_receiving()
    S.raises("calling 'send' on bad self %(endpoint is busy with a background job%)", function() return ep:send("x") end)
    job:stop()
    ep:close()
    S.raises("calling 'recv' on bad self %(endpoint is closed%)", function() return ep:recv() end)
  end)
end)

describe("limits", function()
  after_each(function() luaswitch.stop() end)

  it("refuses a switch beyond 4096 per runtime with nil, message, code", function()
    luaswitch.stop()
    for i = 1, 4096 do assert.truthy(luaswitch.switch("s" .. i)) end
    local sw, msg, code = luaswitch.switch "one too many"
    assert.is_nil(sw)
    assert.equal("EMFILE", code)
    assert.matches("limit of 4096 switches reached", msg)
    assert.equal(4096, #luaswitch.switches())
  end)
end)
