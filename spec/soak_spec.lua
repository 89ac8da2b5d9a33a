-- Chaos soak: a switch in its own `luaswitch --control` process carries mixed traffic on
-- nine unix datagram ports (peers in this process: traffic jobs on background threads)
-- while a chaos loop adds and removes ports, flips port flags and filters, kills and
-- restarts peers, floods random source MACs (20,000 a second all through: 1.2 million a
-- minute; the "flood" action starts a new stream), advances the clock (ageing everything out),
-- and attaches and detaches control clients (`luaswitch ctl` for every action, and
-- spec/ctl_client.py with several connections at once). At the end: every port's frames
-- add up (sw:audit()), the switch process holds no more file descriptors or threads than
-- after warm-up and its RSS is within 10% of that level (the frame-buffer cache aside),
-- the well-behaved pair lost nothing, in order, and was never paused for longer than the
-- bound below beyond what a reference pair without the switch paused in the same run (the
-- sinks' longest gap between arrivals and longest one-way latency), and the process exits
-- cleanly on SIGTERM (under a sanitizer: with no report).
--
-- One minute by default; LS_SOAK_SECONDS=600 for the ten-minute run (README, "Soak").
-- Under a sanitizer the default is 20 s, and RSS is not asserted (ASan's quarantine and
-- TSan's shadow memory grow by design). LS_SOAK_ACTIONS=flood,age (say) runs only those
-- chaos actions, to find which one hurts; "none" runs none.

local luaswitch = require "luaswitch"
local frame = require "luaswitch.frame"
local json = require "luaswitch.json"
local S = require "support"

local BIN = os.getenv("LUASWITCH_BIN") or "build/luaswitch"
local SRC = os.getenv("LUASWITCH_SOURCE") or "."
local SECONDS = tonumber(os.getenv("LS_SOAK_SECONDS") or (S.SANITIZER and 20 or 60))
-- Pauses of the good pair, counted beyond what the machine does to a reference pair (a
-- paced sender and its sink in this process with no switch between them, at the same rate)
-- in the same run: on a shared 2-core machine the reference alone pauses 10-100 ms now and
-- then. The goal is 50 ms (LS_SOAK_MAX_PAUSE=0.05): met in one-minute runs and a
-- ten-minute one on the otherwise idle machine, exceeded by up to 40 ms with other jobs
-- beside it (README, "Soak"), so the default bound is 100 ms, tight enough to catch any of
-- the 100-600 ms pauses this spec used to see. Under a sanitizer the data plane runs
-- several times slower and the bound is a stall guard of one second. The figures, and the
-- chaos actions under way during the longest pause, are always printed.
local MAX_PAUSE = tonumber(os.getenv("LS_SOAK_MAX_PAUSE") or (S.SANITIZER and "1.0" or "0.1"))

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local rss_kb, fd_count, thread_count = S.rss_kb, S.fd_count, S.thread_count

-- The lab in the switch process. Traffic ports are unix datagram ports whose peers are
-- endpoints in the spec; churn ports are socketpairs whose far ends drain in a sink job
-- there; one "deaf" port's peer never reads (its queue fills, it stalls, and it must cost
-- the others at most one 40 ms hold-up).
local LAB = [[
luaswitch = require "luaswitch"
frame = require "luaswitch.frame"
sw = luaswitch.switch { name = "soak", max_macs = 2048, evict = "port" }
local dir = ...
traffic = {}
function traffic_port(name, txqlen)
  -- the flooder gets no learn_limit: its floods run at the rate the chaos script asks
  traffic[name] = sw:port { kind = "unix", name = name, path = dir .. "/sw-" .. name .. ".sock",
                            peer = dir .. "/" .. name .. ".sock", txqlen = txqlen,
                            learn_limit = name == "fl" and 0 or nil }
  return true
end
function drops(name)
  local out = {}
  for k, v in pairs(traffic[name]:stats().drops) do
    if v > 0 then out[#out + 1] = k .. "=" .. v end
  end
  table.sort(out)
  return table.concat(out, " ")
end
function cpu() -- seconds on CPU of this process's threads, by name
  local out = {}
  local f = io.open("/proc/self/stat")
  local pid = f:read("a"):match("^(%d+)")
  f:close()
  for tid in io.popen("ls /proc/" .. pid .. "/task"):lines() do
    local f = io.open("/proc/" .. pid .. "/task/" .. tid .. "/stat")
    if f then
      local st = f:read("a")
      f:close()
      local name, rest = st:match("%((.-)%) (.*)")
      local fields = {}
      for x in rest:gmatch("%S+") do fields[#fields + 1] = x end
      out[name] = (out[name] or 0) + (tonumber(fields[12]) + tonumber(fields[13])) / 100
    end
  end
  return out
end
churn, churned = {}, 0
function add_churn()
  churned = churned + 1
  local p = sw:port { kind = "socketpair", name = "churn" .. churned }
  local ep = p:endpoint()
  ep:send(frame.ethernet { src = frame.mac(100000 + churned), dst = frame.BROADCAST, size = 60 })
  churn[#churn + 1] = { port = p, ep = ep, sink = ep:start_receiving() }
  return #churn
end
function del_churn()
  local c = table.remove(churn, 1)
  if not c then return 0 end
  c.sink:stop()
  c.ep:close()
  c.port:close()
  return #churn
end
local deaf_ep
function deaf()
  local p = sw:port { kind = "socketpair", name = "deaf" }
  deaf_ep = p:endpoint() -- never read
  return true
end
function flip(name, flags) traffic[name]:set(flags); return true end
function filter(name, rules) traffic[name]:filter("in", rules); return #rules end
function age(seconds)
  luaswitch.clock("manual")
  luaswitch.advance(seconds)
  luaswitch.clock("real")
  return true
end
function audit()
  local ok, bad = sw:audit()
  local out = {}
  for _, b in ipairs(bad or {}) do
    out[#out + 1] = ("%s %s: %d in, %d accounted for"):format(b.port and b.port.name or "?", b.side,
      b.received or b.queued, b.accounted)
  end
  return { ok = ok, bad = out }
end
function summary()
  local st = sw:stats()
  return { entries = st.fdb.entries, max = sw:config().max_macs, ports = #sw:ports(),
           buffers = luaswitch.info().buffers_allocated, buffer_kb = luaswitch.info().buffer_bytes // 1024,
           unicast = st.unicast, flooded = st.flooded, events_lost = luaswitch.info().events_lost,
           max_busy = luaswitch.info().max_busy, max_busy_at = luaswitch.info().max_busy_at }
end
]]

describe("soak", function()
  local dir, srv, eps, jobs

  -- One control request through `luaswitch ctl` (a client that attaches, asks, detaches).
  local function ctl(chunk)
    local p = io.popen(("%s ctl %s %s 2>&1"):format(BIN, q(srv.sock), q(chunk)))
    local out = p:read("a")
    local ok, _, code = p:close()
    assert(ok, ("ctl %s failed (%s): %s"):format(chunk, tostring(code), out))
    return json.decode(out)
  end

  local function start_server()
    srv = { sock = dir .. "/ctl.sock", pidfile = dir .. "/pid", rc = dir .. "/rc", out = dir .. "/server.out" }
    local lab = dir .. "/lab.lua"
    local f = assert(io.open(lab, "w"))
    f:write(LAB)
    f:close()
    os.execute(("sh -c %s >/dev/null 2>&1 &"):format(q(("%s --control %s %s %s >%s 2>&1 & echo $! >%s; wait $!; echo $? >%s")
      :format(BIN, q(srv.sock), q(lab), q(dir), q(srv.out), q(srv.pidfile), q(srv.rc)))))
    S.eventually(function()
      srv.pid = tonumber(S.read_file(srv.pidfile) or "")
      return srv.pid and os.execute("test -S " .. q(srv.sock)) == true
    end, 20, "the switch process to serve its control socket")
  end

  local function stop_server()
    if not srv or not srv.pid then return end
    os.execute("kill -TERM " .. srv.pid .. " 2>/dev/null")
    local ended = luaswitch.wait_until(function() return S.read_file(srv.rc) ~= nil end, 30)
    if not ended then os.execute("kill -KILL " .. srv.pid .. " 2>/dev/null") end
    local rc = tonumber(S.read_file(srv.rc) or "")
    srv.pid = nil
    return rc
  end

  -- A peer of traffic port `name`: an endpoint bound at its peer path.
  -- A restarted peer is refused (EPERM) until the switch noticed the old one died: its
  -- socket is connected to the old peer until a send fails or the 1 Hz probe (port_dgram.c).
  local function peer(name)
    local deadline = luaswitch.monotime() + 5
    while true do
      local ep, err = luaswitch.endpoint { path = dir .. "/" .. name .. ".sock", peer = dir .. "/sw-" .. name .. ".sock" }
      if ep then
        eps[name] = ep
        return ep
      end
      assert(err:match("^EPERM") and luaswitch.monotime() < deadline, err)
      luaswitch.wait_until(function() return false end, 0.01)
    end
  end

  local function stop_jobs(name)
    local j = jobs[name]
    if not j then return end
    local r = {}
    if j.send then r.sent = j.send:stop() end
    if j.sink then r.got = j.sink:stop() end
    jobs[name] = nil
    return r
  end

  before_each(function()
    dir = S.tmpdir()
    eps, jobs = {}, {}
  end)

  after_each(function()
    for name in pairs(jobs) do stop_jobs(name) end
    for _, ep in pairs(eps) do ep:close() end
    stop_server()
    S.cleanup()
  end)

  it("keeps forwarding through chaos: frames add up, no leaks, RSS flat, the good pair loses nothing and never stops", function()
    local san = S.SANITIZER
    local rate = san and 1000 or 4000 -- per sender, frames/s
    -- random source MACs a second, all through the chaos: 1.2 million a minute
    local flood_rate = tonumber(os.getenv("LS_SOAK_FLOOD_RATE") or (san and 5000 or 20000))
    start_server()
    local mixed = { "m1", "m2", "m3", "m4", "m5", "m6" }
    local names = { "ga", "gb", "fl" }
    for _, n in ipairs(mixed) do names[#names + 1] = n end
    -- the good pair's queues are deep: a sink thread this busy machine leaves unscheduled
    -- for a while must not make the switch declare the port stalled and drop its frames
    for _, n in ipairs(names) do
      ctl(("return traffic_port(%q, %s)"):format(n, (n == "ga" or n == "gb") and "65536" or "nil"))
    end
    ctl("return deaf()")
    local mac = { ga = frame.mac(1), gb = frame.mac(2), fl = frame.mac(3) }
    for i, n in ipairs(mixed) do mac[n] = frame.mac(10 + i) end

    -- the well-behaved pair: sequence numbers and send times, both ways
    local function good(from, to)
      jobs[from] = jobs[from] or {}
      jobs[from].send = eps[from]:start_sending {
        frame = frame.ethernet { src = mac[from], dst = mac[to], size = 128 },
        rate = rate, seq_offset = 14, ts_offset = 22 }
    end
    -- introduce both (a broadcast each, until the other got it), so that their frames are
    -- unicast from the start; then each takes only its partner's frames (an egress rule),
    -- so their sinks see nothing of the mixed traffic's floods
    for _, n in ipairs { "ga", "gb" } do peer(n) end
    local deadline = luaswitch.monotime() + 10
    local heard = {}
    while not (heard.ga and heard.gb) do
      assert(luaswitch.monotime() < deadline, "the good pair to hear each other")
      for n, to in pairs { ga = "gb", gb = "ga" } do
        eps[n]:send(frame.ethernet { src = mac[n], dst = frame.BROADCAST, size = 60 })
        local f = eps[to]:recv(0.1)
        if f and frame.parse(f).src == mac[n] then heard[to] = true end
      end
    end
    for n, from in pairs { ga = "gb", gb = "ga" } do
      ctl(("traffic.%s:filter('out', { { match = 'not ether src %s', action = 'drop' } }); return true"):format(n, mac[from]))
      eps[n]:drain()
      jobs[n] = { sink = eps[n]:start_receiving { seq_offset = 14, ts_offset = 22 } }
    end
    good("ga", "gb"); good("gb", "ga")
    -- a reference pair without the switch between them, at the same rate: what this machine
    -- itself does to a paced sender and its sink (scheduling), measured in the same run
    eps.ra = assert(luaswitch.endpoint { path = dir .. "/ra.sock" })
    eps.rb = assert(luaswitch.endpoint { path = dir .. "/rb.sock", peer = dir .. "/ra.sock" })
    assert(eps.ra:connect(dir .. "/rb.sock"))
    jobs.ra = { sink = eps.ra:start_receiving { seq_offset = 14, ts_offset = 22 } }
    jobs.rb = { send = eps.rb:start_sending { frame = frame.ethernet { src = mac.gb, dst = mac.ga, size = 128 },
                                              rate = rate, seq_offset = 14, ts_offset = 22 } }

    -- mixed traffic: unicast to the others, broadcast, multicast, unknown unicast; 60-1500 bytes
    local sizes = { 60, 200, 576, 1000, 1500 }
    local function start_mixed(n, i)
      local frames = {}
      for j, o in ipairs(mixed) do
        if o ~= n then frames[#frames + 1] = frame.ethernet { src = mac[n], dst = mac[o], size = sizes[(i + j) % 5 + 1] } end
      end
      frames[#frames + 1] = frame.ethernet { src = mac[n], dst = frame.BROADCAST, size = 60 }
      frames[#frames + 1] = frame.ethernet { src = mac[n], dst = "01:00:5e:00:00:01", size = 300 }
      frames[#frames + 1] = frame.ethernet { src = mac[n], dst = frame.mac(999), size = 100 }
      jobs[n] = { sink = eps[n]:start_receiving(), send = eps[n]:start_sending { frames = frames, rate = rate / 2 } }
    end
    for i, n in ipairs(mixed) do peer(n); start_mixed(n, i) end
    peer("fl")
    jobs.fl = { sink = eps.fl:start_receiving() }

    local rng = 12345
    local function random(n) -- xorshift, seeded: the same chaos every run
      rng = rng ~ (rng << 13); rng = rng ~ (rng >> 7); rng = rng ~ (rng << 17)
      return (rng & 0x7fffffff) % n + 1
    end
    local counts = {}
    local flood_seed, flood, flooded = 0, nil, 0
    local clients = {}
    local actions = {
      add_port = function() if ctl("return #churn") < 8 then ctl("return add_churn()") end end,
      del_port = function() ctl("return del_churn()") end,
      flags = function()
        local n = mixed[random(#mixed)]
        local flags = { "learning", "flood", "mcast_flood", "bcast_flood", "isolated", "hairpin" }
        local f = flags[random(#flags)]
        ctl(("return flip(%q, { %s = %s })"):format(n, f, random(2) == 1 and "true" or "false"))
      end,
      filters = function()
        local n = mixed[random(#mixed)]
        local sets = { "{}", '{ { match = "ether multicast", action = "drop" } }',
                       '{ { match = "greater 1000", action = "count" }, { match = "ether broadcast", action = "police", pps = 100 } }',
                       '{ { match = "ether src ' .. mac[mixed[random(#mixed)]] .. '", action = "drop" } }' }
        ctl(("return filter(%q, %s)"):format(n, sets[random(#sets)]))
      end,
      kill_peer = function()
        local n = mixed[random(#mixed)]
        stop_jobs(n)
        eps[n]:close()
        eps[n] = nil
        peer(n)
        start_mixed(n, random(5))
      end,
      -- the flooder sends random sources all through the chaos; this starts it anew (a
      -- new seed: a new stream of sources, as a new flooder would)
      flood = function()
        if flood then flooded = flooded + flood:stop().frames end
        flood_seed = flood_seed + 1
        flood = eps.fl:start_sending { frame = frame.ethernet { src = mac.fl, dst = mac.m1, size = 60 },
                                       rate = flood_rate, random_src = true, seed = flood_seed }
        jobs.flood = { send = flood }
      end,
      age = function() ctl("return age(400)") end,
      clients = function()
        local p = io.popen(("python3 %s/spec/ctl_client.py %s many 4 10 2>&1"):format(SRC, q(srv.sock)))
        clients[#clients + 1] = p
        if #clients > 2 then
          local c = table.remove(clients, 1)
          local out = c:read("a")
          assert(c:close(), "a control client failed: " .. out)
          assert.matches("^ok", out)
        end
      end,
    }
    local diag = { none = function() end, ctl_only = function() ctl("return 1") end } -- only when asked
    for k, f in pairs(diag) do actions[k] = f end
    local order = {}
    local only = os.getenv("LS_SOAK_ACTIONS") -- e.g. "flood,age": a subset, to find a culprit
    for k in pairs(actions) do
      if (not only and not diag[k]) or (only and (("," .. only .. ","):find("," .. k .. ",", 1, true))) then order[#order + 1] = k end
    end
    table.sort(order)

    local idle = luaswitch.endpoint {}
    local timeline = {} -- { a = action, t0 =, t1 = } on luaswitch.monotime()'s clock
    -- the chaos actions under way during [from, to]: what the longest pause coincided with
    local function during(from, to)
      local out = {}
      for _, e in ipairs(timeline) do
        if e.t1 >= from - 0.05 and e.t0 <= to then
          out[#out + 1] = ("%s at %+.0f ms (%.0f ms)"):format(e.a, (e.t0 - to) * 1e3, (e.t1 - e.t0) * 1e3)
        end
      end
      return #out > 0 and table.concat(out, ", ") or "none"
    end
    local flooding = false
    for _, a in ipairs(order) do flooding = flooding or a == "flood" end
    local function chaos(seconds)
      local deadline = luaswitch.monotime() + seconds
      if flooding and not flood then actions.flood() end
      while luaswitch.monotime() < deadline do
        local a = order[random(#order)]
        local t0 = luaswitch.monotime()
        actions[a]()
        timeline[#timeline + 1] = { a = a, t0 = t0, t1 = luaswitch.monotime() }
        counts[a] = (counts[a] or 0) + 1
        idle:recv(0.15) -- pace the chaos: about five actions a second
      end
    end
    -- back to the shape of the warm-up: no churn ports, every peer alive, nothing pending
    local function quiesce()
      while ctl("return del_churn()") > 0 do end
      for _, c in ipairs(clients) do
        local out = c:read("a")
        assert(c:close(), "a control client failed: " .. out)
      end
      clients = {}
      if flood then flooded = flooded + flood:stop().frames; flood = nil; jobs.flood = nil end
    end

    -- warm-up: long enough for the allocator's working set to settle (RSS steps up by a
    -- few MB in the first half minute of chaos, then stays: README, "Soak")
    local warmup = SECONDS >= 180 and SECONDS // 6 or SECONDS // 2
    chaos(warmup)
    quiesce()
    collectgarbage()
    -- the fd count at rest: a control client that just left may still be open on the
    -- server side for a moment, so take the least of a few counts
    local base = { rss = rss_kb(srv.pid), fds = fd_count(srv.pid), threads = thread_count(srv.pid),
                   buffer_kb = ctl("return summary()").buffer_kb }
    for _ = 1, 5 do
      idle:recv(0.1)
      base.fds = math.min(base.fds, fd_count(srv.pid))
    end
    local samples = { base.rss }
    local t_end = luaswitch.monotime() + SECONDS - warmup
    while luaswitch.monotime() < t_end do
      chaos(math.min(10, t_end - luaswitch.monotime()))
      samples[#samples + 1] = rss_kb(srv.pid)
    end
    quiesce()
    local final = { rss = rss_kb(srv.pid), threads = thread_count(srv.pid) }
    final.fds = fd_count(srv.pid)
    local deadline = luaswitch.monotime() + 5
    while final.fds > base.fds and luaswitch.monotime() < deadline do -- a leak stays
      idle:recv(0.05)
      final.fds = fd_count(srv.pid)
    end
    local sum = ctl("return summary()")

    -- stop the traffic and let the sinks take what is under way
    local good_sent = {}
    for _, n in ipairs { "ga", "gb" } do good_sent[n] = jobs[n].send:stop().frames; jobs[n].send = nil end
    local good_got = {}
    good_got.gb = jobs.gb.sink:wait { frames = good_sent.ga, timeout = 30 }
    good_got.ga = jobs.ga.sink:wait { frames = good_sent.gb, timeout = 30 }
    local ref_sent = jobs.rb.send:stop().frames
    local ref = jobs.ra.sink:wait { frames = ref_sent, timeout = 30 }
    jobs.ra, jobs.rb = nil, nil
    for _, n in ipairs(mixed) do stop_jobs(n) end
    stop_jobs("fl")
    jobs.ga, jobs.gb = nil, nil
    local audit
    S.eventually(function() audit = ctl("return audit()"); return audit.ok end, 10, "the frames to add up")

    local maxrss = 0
    for _, r in ipairs(samples) do maxrss = math.max(maxrss, r) end
    local report = {
      ("soak: %d s (%d s warm-up) at %d frames/s per good sender; actions:"):format(SECONDS, warmup, rate),
    }
    for _, a in ipairs(order) do report[#report + 1] = ("  %s %d"):format(a, counts[a] or 0) end
    report[#report + 1] = ("switch process: RSS %d kB after warm-up, %d kB at the end (max %d kB), fds %d -> %d, threads %d -> %d; frame buffers %d kB -> %d kB")
      :format(base.rss, final.rss, maxrss, base.fds, final.fds, base.threads, final.threads, base.buffer_kb, sum.buffer_kb)
    local rs = {}
    for i, r in ipairs(samples) do rs[i] = tostring(r) end
    report[#report + 1] = "RSS samples (kB, every 10 s after warm-up): " .. table.concat(rs, " ")
    report[#report + 1] = ("fdb at the end: %d entries (cap %d); %d unicast, %d flooded; events lost %d")
      :format(sum.entries, sum.max, sum.unicast, sum.flooded, sum.events_lost)
    report[#report + 1] = ("random source MACs flooded: %d (at %d a second, %d streams)"):format(flooded, flood_rate, flood_seed)
    for _, d in ipairs { { "ga", "gb" }, { "gb", "ga" } } do
      local g = good_got[d[2]]
      report[#report + 1] = ("good %s -> %s: %d sent, %d received, %d in order, %d missing; longest gap %.1f ms, latency max %.1f ms mean %.3f ms")
        :format(d[1], d[2], good_sent[d[1]], g.frames, g.in_order, g.gaps, g.max_gap * 1e3, g.max_latency * 1e3,
          g.mean_latency * 1e3)
      if g.max_gap_at then
        report[#report + 1] = "  chaos during the longest gap: " .. during(g.max_gap_at - g.max_gap, g.max_gap_at)
      end
      if g.max_latency_at then
        report[#report + 1] = "  chaos during the slowest frame: " .. during(g.max_latency_at - g.max_latency, g.max_latency_at)
      end
    end
    report[#report + 1] = ("data plane's longest busy iteration: %.1f ms; chaos then: %s")
      :format(sum.max_busy * 1e3, sum.max_busy_at and during(sum.max_busy_at - sum.max_busy, sum.max_busy_at) or "-")
    report[#report + 1] = ("drops at the good ports: ga { %s } gb { %s }"):format(ctl('return drops("ga")'), ctl('return drops("gb")'))
    local c = ctl("return cpu()")
    local cs = {}
    for k, v in pairs(c) do cs[#cs + 1] = ("%s %.1f s"):format(k, v) end
    table.sort(cs)
    report[#report + 1] = "switch process CPU: " .. table.concat(cs, ", ")
    report[#report + 1] = ("reference (no switch): %d sent, %d received; longest gap %.1f ms, latency max %.1f ms mean %.3f ms")
      :format(ref_sent, ref.frames, ref.max_gap * 1e3, ref.max_latency * 1e3, ref.mean_latency * 1e3)
    io.stderr:write(table.concat(report, "\n"), "\n")

    assert.equal(0, #audit.bad, table.concat(audit.bad, "; "))
    assert.is_true(sum.entries <= sum.max)
    assert.is_true(final.fds <= base.fds, ("fds %d -> %d"):format(base.fds, final.fds))
    assert.is_true(final.threads <= base.threads, ("threads %d -> %d"):format(base.threads, final.threads))
    if not san then
      -- the frame-buffer cache fills as queues deepen (bounded: buf.c keeps at most 8192
      -- small, 512 medium and 64 large free buffers, about 30 MB); what it took is not
      -- counted as growth
      local cache_kb = math.max(0, sum.buffer_kb - base.buffer_kb)
      assert.is_true(final.rss <= base.rss * 1.10 + cache_kb,
        ("RSS %d kB -> %d kB (buffer cache %d kB)"):format(base.rss, final.rss, cache_kb))
    end
    for _, d in ipairs { { "ga", "gb" }, { "gb", "ga" } } do
      local g = good_got[d[2]]
      assert.equal(good_sent[d[1]], g.frames)
      assert.equal(g.frames, g.in_order)
      -- the machine's own pauses (the reference pair's) are not the switch's
      local bound = MAX_PAUSE + math.max(ref.max_gap, ref.max_latency)
      assert.is_true(g.max_gap < bound, ("%s -> %s paused %.1f ms (bound %.1f ms)"):format(d[1], d[2], g.max_gap * 1e3, bound * 1e3))
      assert.is_true(g.max_latency < bound, ("%s -> %s: a frame took %.1f ms (bound %.1f ms)"):format(d[1], d[2], g.max_latency * 1e3, bound * 1e3))
    end
    for _, n in ipairs(names) do eps[n]:close(); eps[n] = nil end
    idle:close()
    assert.equal(0, stop_server(), S.read_file(srv.out))
  end)
end)
