-- Start-up: a port with a fixed peer is up the moment its peer can receive, not when a
-- retry timer fires (issue 13). Chains of switches joined by unix ports, filesystem paths
-- and abstract names, are up as soon as the last port is created, and the first frames
-- sent get through; a peer bound later by a plain socket brings its port up within
-- milliseconds (inotify for a path, a short back-off for an abstract name); and the same
-- for stream ports in the connect role, whether the listener is another port or not.

local luaswitch = require "luaswitch"
local S = require "support"

local BURST = 200   -- frames per burst
local PROMPT = 0.05 -- "at once" for a peer outside the runtime: well under the old first retry
                   -- (250 ms for unix ports, 100 ms for connecting stream ports)

-- Every drop counter of port p is zero (named in the failure otherwise).
local function no_drops(p)
  local bad = {}
  for k, v in pairs(p:stats().drops) do
    if v ~= 0 then bad[#bad + 1] = ("%s=%d"):format(k, v) end
  end
  table.sort(bad)
  assert(#bad == 0, ("port %s dropped frames: %s"):format(p.name, table.concat(bad, ", ")))
end

-- Frames tagged with their number, from host src to host dst.
local function burst(src, dst)
  local list = {}
  for i = 1, BURST do list[i] = S.frame(src, dst, { payload = ("startup frame %06d"):format(i) }) end
  return list
end

-- Every frame of `want` arrives on endpoint ep, in order, and nothing else.
local function receive_all(ep, want, what)
  local got = S.collect_n(ep, #want, 2)
  assert(#got == #want, ("%s: %d of %d frames arrived"):format(what, #got, #want))
  for i = 1, #want do
    assert(got[i] == want[i], ("%s: frame %d is not the one sent"):format(what, i))
  end
end

-- Send frame f on endpoint ep as the first frame after a port's creation returned at
-- `created` (luaswitch.monotime()): the send must start within a millisecond of it, long
-- before any retry timer could bring a port up. (How long the send call itself then takes
-- is the scheduler's business on a loaded machine, not the switch's.)
local function send_first(ep, f, created)
  local dt = luaswitch.monotime() - created
  assert(dt < 0.001, ("the first frame went out %.3f ms after the last port's creation"):format(dt * 1e3))
  ep:send(f)
end

local function unique(tag)
  return ("@luaswitch-startup-%d-%d-%s"):format(S.pid(), math.random(1, 1e9), tag)
end

describe("ports with a fixed peer at start-up", function()
  local made, dir

  -- Objects to close at the end, whatever happens.
  local function keep(o)
    made[#made + 1] = o
    return o
  end

  before_each(function()
    made = {}
    dir = S.tmpdir()
  end)

  after_each(function()
    for i = #made, 1, -1 do
      local o = made[i]
      if not o.closed then pcall(o.close, o) end
    end
    S.cleanup()
  end)

  -- Four switches s1 - s2 - s3 - s4 joined by unix ports with fixed peers; addr(i, j) is the
  -- address of switch i's port towards switch j. Each end switch has a socketpair port with
  -- an endpoint. The first frame goes out right after the last port's creation; every frame
  -- of a burst both ways arrives.
  local function chain(addr)
    local sws = {}
    for i = 1, 4 do sws[i] = keep(luaswitch.switch(("chain%d"):format(i))) end
    local h1 = sws[1]:port { kind = "socketpair", name = "h1" }
    local h4 = sws[4]:port { kind = "socketpair", name = "h4" }
    local e1, e4 = keep(h1:endpoint()), keep(h4:endpoint())
    local links = {}
    local created
    local fwd = burst(1, 4)
    for i = 1, 3 do
      local a = assert(sws[i]:port { kind = "unix", name = "to" .. (i + 1), path = addr(i, i + 1),
        peer = addr(i + 1, i) })
      assert.equal("down", a:info().link) -- its peer is not there yet
      local b = assert(sws[i + 1]:port { kind = "unix", name = "to" .. i, path = addr(i + 1, i),
        peer = addr(i, i + 1) })
      created = luaswitch.monotime()
      links[#links + 1] = a
      links[#links + 1] = b
      if i < 3 then
        -- both ends are up the moment the second one exists
        assert(a:info().link == "up", a.name .. " of " .. sws[i].name .. " is down")
        assert(b:info().link == "up", b.name .. " of " .. sws[i + 1].name .. " is down")
      end
    end
    send_first(e1, fwd[1], created) -- the last port was made just now
    for i = 2, #fwd do e1:send(fwd[i]) end
    for _, p in ipairs(links) do
      assert(p:info().link == "up", p.name .. " of " .. p.switch.name .. " is down")
    end
    receive_all(e4, fwd, "s1 -> s4")
    local back = burst(4, 1)
    for _, f in ipairs(back) do e4:send(f) end
    receive_all(e1, back, "s4 -> s1")
    assert.is_true(S.nothing(e4) and S.nothing(e1), "extra frames")
    for _, sw in ipairs(sws) do
      S.audit(sw)
      for _, p in ipairs(sw:ports()) do no_drops(p) end
    end
    for _, p in ipairs(links) do assert.equal(0, p:stats().hangups) end
  end

  it("a chain of unix ports on filesystem paths is up at once and loses no frame", function()
    chain(function(i, j) return ("%s/s%d-s%d.sock"):format(dir, i, j) end)
  end)

  it("a chain of unix ports on abstract names is up at once and loses no frame", function()
    local base = unique("chain")
    chain(function(i, j) return ("%s-s%d-s%d"):format(base, i, j) end)
  end)

  -- A unix port whose fixed peer is bound later, by a plain socket outside luaswitch, goes
  -- up within PROMPT of the bind; then frames flow both ways.
  local function later_peer(local_addr, peer_addr, deadline)
    local sw = keep(luaswitch.switch "later")
    local rec = S.record(sw, { "port" })
    local p = assert(sw:port { kind = "unix", name = "vm", path = local_addr, peer = peer_addr })
    local h = sw:port { kind = "socketpair", name = "h" }
    local eh = keep(h:endpoint())
    assert.equal("down", p:state())
    local vm = keep(assert(luaswitch.endpoint { path = peer_addr })) -- binds; sends nothing
    local t0 = luaswitch.monotime()
    local up = luaswitch.wait_until(function() return #rec.port > 0 end, deadline)
    local dt = luaswitch.monotime() - t0
    assert(up, ("no port event within %d ms of the peer's bind"):format(deadline * 1e3))
    assert.equal("up", rec.port[1].state)
    assert.equal("peer", rec.port[1].reason)
    assert.is_true(dt < deadline)
    local out = burst(2, 1)
    for _, f in ipairs(out) do eh:send(f) end
    receive_all(vm, out, "switch -> peer")
    assert.is_true(vm:connect(local_addr))
    local into = burst(1, 2)
    for _, f in ipairs(into) do vm:send(f) end
    receive_all(eh, into, "peer -> switch")
    S.audit(sw)
    no_drops(p)
  end

  it("a unix port goes up within milliseconds of a plain socket binding its peer path", function()
    later_peer(dir .. "/sw.sock", dir .. "/vm.sock", PROMPT)
  end)

  it("a unix port goes up within milliseconds of a plain socket binding its abstract peer", function()
    later_peer(unique("sw"), unique("vm"), PROMPT)
  end)

  it("a unix port whose peer directory does not exist yet falls back to its back-off", function()
    local sub = dir .. "/later"
    local sw = keep(luaswitch.switch "nodir")
    local p = assert(sw:port { kind = "unix", name = "vm", path = dir .. "/sw.sock", peer = sub .. "/vm.sock" })
    assert.equal("down", p:state())
    assert.is_true(os.execute("mkdir '" .. sub .. "'") == true)
    keep(assert(luaswitch.endpoint { path = sub .. "/vm.sock" }))
    S.eventually(function() return p:state() == "up" end, 2, "the port to come up")
  end)

  -- A stream port in the connect role, made before the stream port of another switch that
  -- listens at `addr`: both are up as soon as the listener exists, and frames flow.
  local function stream_pair(addr)
    local s1, s2 = keep(luaswitch.switch "conn"), keep(luaswitch.switch "lis")
    local h1 = s1:port { kind = "socketpair", name = "h1" }
    local h2 = s2:port { kind = "socketpair", name = "h2" }
    local e1, e2 = keep(h1:endpoint()), keep(h2:endpoint())
    local c = assert(s1:port { kind = "stream", name = "c", connect = addr })
    assert.equal("down", c:state())
    local fwd = burst(1, 2)
    local l = assert(s2:port { kind = "stream", name = "l", listen = addr })
    send_first(e1, fwd[1], luaswitch.monotime())
    for i = 2, #fwd do e1:send(fwd[i]) end
    assert(c:info().link == "up", "the connecting port is down")
    assert(l:info().link == "up", "the listening port is down")
    receive_all(e2, fwd, "connect -> listen")
    local back = burst(2, 1)
    for _, f in ipairs(back) do e2:send(f) end
    receive_all(e1, back, "listen -> connect")
    for _, sw in ipairs { s1, s2 } do
      S.audit(sw)
      for _, p in ipairs(sw:ports()) do no_drops(p) end
    end
  end

  it("a connecting stream port connects as soon as a stream port listens at its path", function()
    stream_pair(dir .. "/stream.sock")
  end)

  it("a connecting stream port connects as soon as a stream port listens at its abstract name", function()
    stream_pair(unique("stream"))
  end)

  -- A connecting stream port, made before a plain listener outside luaswitch binds `addr`:
  -- up within PROMPT; then frames flow both ways.
  local function stream_later(addr)
    local sw = keep(luaswitch.switch "connlater")
    local rec = S.record(sw, { "port" })
    local h = sw:port { kind = "socketpair", name = "h" }
    local eh = keep(h:endpoint())
    local c = assert(sw:port { kind = "stream", name = "c", connect = addr })
    assert.equal("down", c:state())
    local srv = keep(assert(luaswitch.endpoint { listen = addr }))
    local up = luaswitch.wait_until(function() return #rec.port > 0 end, PROMPT)
    assert(up, ("no port event within %d ms of the listener's bind"):format(PROMPT * 1e3))
    assert.equal("up", rec.port[1].state)
    assert.is_true(srv:accept(1))
    local out = burst(2, 1)
    for _, f in ipairs(out) do eh:send(f) end
    receive_all(srv, out, "switch -> listener")
    local into = burst(1, 2)
    for _, f in ipairs(into) do srv:send(f) end
    receive_all(eh, into, "listener -> switch")
    S.audit(sw)
    no_drops(c)
  end

  it("a connecting stream port connects within milliseconds of a plain listener at its path", function()
    stream_later(dir .. "/ext.sock")
  end)

  it("a connecting stream port connects within milliseconds of a plain listener at its abstract name", function()
    stream_later(unique("ext"))
  end)

  it("a waiting port closed before its peer appears leaves nothing behind", function()
    local sw = keep(luaswitch.switch "gone")
    local fds = S.fd_count()
    local p = assert(sw:port { kind = "unix", name = "u", path = dir .. "/a.sock", peer = dir .. "/b.sock" })
    local c = assert(sw:port { kind = "stream", name = "c", connect = dir .. "/c.sock" })
    assert.equal("down", p:state())
    assert.equal("down", c:state())
    p:close()
    c:close()
    S.eventually(function() return S.fd_count() == fds end, 2, "the ports' descriptors to close")
    -- and a peer appearing afterwards wakes nothing
    keep(assert(luaswitch.endpoint { path = dir .. "/b.sock" }))
    keep(assert(luaswitch.endpoint { listen = dir .. "/c.sock" }))
    luaswitch.dispatch(0.02)
    assert.equal(0, #sw:ports())
  end)
end)
