-- MAC flood: a million random source MACs at full speed from one port while two known
-- hosts exchange unicast (both ways, paced) through the same switch. The table stays at its
-- cap (the `port` eviction policy makes the flooder evict its own entries), the known
-- hosts keep their entries and lose nothing, and memory stays flat once the table is full:
-- the table's memory does not change at all, and over the second half of the flood the
-- process's RSS grows by no more than 10% beyond what the frame-buffer cache took
-- (`buffer_bytes`; bounded: buf.c keeps at most 8192 small, 512 medium and 64 large free
-- buffers). How much of the known hosts' throughput the flood costs is a ratio of two
-- rates, measured by bench/macflood.lua (README, Benchmarks): too noisy on a shared CI
-- machine to assert here.

local luaswitch = require "luaswitch"
local S = require "support"

describe("a MAC flood", function()
  local eps = {}

  after_each(function()
    for _, ep in pairs(eps) do ep:close() end
    eps = {}
    for _, sw in ipairs(luaswitch.switches()) do S.audit(sw) end
    luaswitch.stop()
    luaswitch.off("lost")
    S.cleanup()
  end)

  it("of 1,000,000 random sources holds the table at its cap, costs known hosts nothing and leaves memory flat", function()
    local N = S.SANITIZER and 200000 or 1000000
    local CAP = 8192
    local RATE = S.SANITIZER and 5000 or 20000 -- each known host, frames/s
    local sw = luaswitch.switch { name = "macflood", max_macs = CAP, evict = "port" }
    -- deep queues for the known hosts: a sink thread the machine leaves unscheduled for a
    -- while (a busy CI box) must not turn into drops for them; c, the flood's sink, keeps
    -- the default queue (the flood waits for it, or, once it is declared stalled, drops)
    local ports, e = {}, {}
    for _, n in ipairs { "a", "b", "c", "x" } do
      -- x floods at full speed: no learn_limit (the next spec shows the limit holding it back)
      ports[n] = sw:port { kind = "socketpair", name = n, txqlen = (n == "a" or n == "b") and 65536 or nil,
                           learn_limit = n == "x" and 0 or nil }
      e[n] = ports[n]:endpoint()
    end
    eps = e
    for i, n in ipairs { "a", "b", "c" } do e[n]:send(S.frame(i, S.BCAST)) end
    S.eventually(function() return sw:stats().fdb.dynamic == 3 end, 5, "three hosts learned")
    for _, n in ipairs { "a", "b", "c" } do e[n]:drain() end
    local lost = 0
    luaswitch.on("lost", function(ev) lost = lost + ev.count end)
    local idle = luaswitch.endpoint {}
    eps.idle = idle

    -- c takes the flood (unicast to c from random sources); a and b take each other's frames
    local csink = e.c:start_receiving()
    local function known(count)
      return { a = e.a:start_sending { frame = S.frame(1, 2, { size = 64 }), count = count, rate = RATE, seq_offset = 14 },
               b = e.b:start_sending { frame = S.frame(2, 1, { size = 64 }), count = count, rate = RATE, seq_offset = 14 } }
    end
    local flooded = 0
    -- run a flood of n frames and the known hosts' streams together; Lua dispatches events
    -- meanwhile (most learn/evict events are lost: the ring holds 65,536)
    local peak, mid = 0, nil
    local function flood(n, seed)
      local f = e.x:start_sending { frame = S.frame(99, 3), count = n, random_src = true, seed = seed }
      local sinks = { a = e.a:start_receiving { seq_offset = 14 }, b = e.b:start_receiving { seq_offset = 14 } }
      local k = known(math.max(1, n // 20))
      local deadline = luaswitch.monotime() + 300
      while not (f:done() and k.a:done() and k.b:done()) do
        assert(luaswitch.monotime() < deadline, "the flood took too long")
        peak = math.max(peak, sw:stats().fdb.entries)
        luaswitch.dispatch(0.05)
        if not mid and f:progress() >= n // 2 then mid = { rss = S.rss_kb(), bufs = luaswitch.info().buffer_bytes // 1024 } end
      end
      assert.equal(n, f:wait().frames)
      flooded = flooded + n
      local sent = k.a:wait().frames
      assert.equal(sent, k.b:wait().frames)
      return sent, { a = sinks.a:wait { frames = sent, timeout = 60 }, b = sinks.b:wait { frames = sent, timeout = 60 } }
    end

    -- warm-up: fill the table and the buffer cache, then take the memory figures
    flood(N // 5, 1)
    S.eventually(function() return csink:progress() + ports.c:stats().drops.tx_full >= flooded end, 60, "the warm-up at c")
    assert.equal(CAP, sw:stats().fdb.dynamic)
    luaswitch.dispatch(0)
    collectgarbage()
    local rss0, fdbmem0, bufs0 = S.rss_kb(), sw:stats().fdb.memory, luaswitch.info().buffer_bytes // 1024

    mid = nil
    local sent, got = flood(N, 2)
    S.eventually(function() return csink:progress() + ports.c:stats().drops.tx_full >= flooded end, 60, "the flood at c")
    local cgot = csink:stop()
    luaswitch.dispatch(0)
    collectgarbage()
    local rss1, fdbmem1, bufs1 = S.rss_kb(), sw:stats().fdb.memory, luaswitch.info().buffer_bytes // 1024
    local st = sw:stats()
    io.stderr:write(("macflood: %d random sources at full speed; table %d/%d (peak %d), %d learned, %d evicted; "
      .. "fdb memory %d -> %d bytes; frame buffers %d kB -> %d kB; RSS %d kB -> %d kB halfway -> %d kB; known hosts %d + %d of %d each in order; "
      .. "c got %d (tx_full %d); %d events lost\n")
      :format(N, st.fdb.dynamic, CAP, peak, st.fdb.learned, st.fdb.evicted, fdbmem0, fdbmem1, bufs0, bufs1, rss0, mid.rss, rss1,
        got.a.in_order, got.b.in_order, sent, cgot.frames, ports.c:stats().drops.tx_full, lost))

    -- the cap held, and the known hosts kept their entries
    assert.is_true(peak <= CAP)
    assert.equal(CAP, st.fdb.dynamic)
    local where = {}
    for _, r in ipairs(sw:fdb()) do where[r.mac] = r.port.name end
    assert.equal("a", where[S.mac(1)])
    assert.equal("b", where[S.mac(2)])
    assert.equal("c", where[S.mac(3)])
    assert.is_true(st.fdb.evicted >= flooded - CAP)
    -- nothing lost or reordered between the known hosts, none of the flood reached them
    for _, n in ipairs { "a", "b" } do
      assert.equal(sent, got[n].frames)
      assert.equal(sent, got[n].in_order)
      assert.equal(0, ports[n]:stats().drops.tx_full)
    end
    -- every flood frame went to c, and only to c (c's own sink may fall behind the flood
    -- on a busy machine: what its queue could not hold is counted, tx_full); c also got
    -- a's and b's introductions
    local cs = ports.c:stats()
    assert.equal(flooded, ports.x:stats().rx_frames)
    assert.equal(flooded + 2, cs.tx_frames + cs.drops.tx_full)
    assert.is_true(cgot.frames >= cs.tx_frames - 2)
    -- memory: the table's is unchanged; over the second half of the flood (the first half
    -- settles the allocator's and Lua's working sets), RSS within 10% once the buffer
    -- cache is counted
    assert.equal(fdbmem0, fdbmem1)
    local cache_kb = math.max(0, bufs1 - mid.bufs)
    if not S.SANITIZER then -- ASan's quarantine and TSan's shadow memory grow by design
      assert.is_true(rss1 <= mid.rss * 1.10 + cache_kb,
        ("RSS %d kB halfway -> %d kB (buffer cache %d kB)"):format(mid.rss, rss1, cache_kb))
    end
  end)

  it("from a port over its learn_limit is held back, not dropped, while known hosts keep their rate", function()
    local LIMIT, N = 2000, 6000
    local sw = luaswitch.switch { name = "limited", evict = "port" }
    local ports, e = {}, {}
    for _, n in ipairs { "a", "b", "c", "x" } do
      ports[n] = sw:port { kind = "socketpair", name = n, txqlen = n ~= "x" and 65536 or nil,
                           learn_limit = n == "x" and LIMIT or nil, learn_burst = n == "x" and LIMIT or nil }
      e[n] = ports[n]:endpoint()
    end
    eps = e
    assert.equal(1000, ports.a:info().learn_limit) -- the defaults
    assert.equal(10000, ports.a:info().learn_burst)
    assert.equal(LIMIT, ports.x:info().learn_limit)
    for i, n in ipairs { "a", "b", "c" } do e[n]:send(S.frame(i, S.BCAST)) end
    S.eventually(function() return sw:stats().fdb.dynamic == 3 end, 5, "three hosts learned")
    for _, n in ipairs { "a", "b", "c" } do e[n]:drain() end
    local learned0 = sw:stats().fdb.learned

    -- x sends N frames from N new sources to c as fast as its socket takes them; a and b
    -- exchange paced unicast meanwhile
    local csink = e.c:start_receiving()
    local sinks = { a = e.a:start_receiving { seq_offset = 14 }, b = e.b:start_receiving { seq_offset = 14 } }
    local t0 = luaswitch.monotime()
    local flood = e.x:start_sending { frame = S.frame(99, 3), count = N, random_src = true, seed = 5 }
    local k = { a = e.a:start_sending { frame = S.frame(1, 2, { size = 64 }), rate = 5000, seq_offset = 14 },
                b = e.b:start_sending { frame = S.frame(2, 1, { size = 64 }), rate = 5000, seq_offset = 14 } }
    -- at every moment the flood is within its budget: the burst (LIMIT), then LIMIT a
    -- second (plus one batch, taken before the hold)
    local worst = -math.huge
    while ports.x:stats().rx_frames < N do
      assert(luaswitch.monotime() - t0 < 60, "the flood took too long")
      local learned = sw:stats().fdb.learned - learned0
      worst = math.max(worst, learned - (LIMIT + LIMIT * (luaswitch.monotime() - t0) + 64))
      luaswitch.dispatch(0.02)
    end
    local took = luaswitch.monotime() - t0
    assert.equal(N, flood:wait().frames)
    local sent = { a = k.a:stop().frames, b = k.b:stop().frames }
    assert.is_true(worst <= 0, ("the flood went %.0f sources over its budget"):format(worst))
    assert.is_true(took >= (N - LIMIT - 64) / LIMIT, ("%d new sources in %.2f s"):format(N, took))
    assert.is_true(ports.x:stats().learn_holds > 0)
    -- held back, not dropped: every flood frame reached c
    assert.equal(N, csink:wait { frames = N, timeout = 30 }.frames)
    assert.equal(0, ports.x:stats().drops.tx_full)
    -- and the known hosts got everything they sent, in order, and were never held
    for _, n in ipairs { "a", "b" } do
      local got = sinks[n]:wait { frames = sent[n == "a" and "b" or "a"], timeout = 30 }
      assert.equal(sent[n == "a" and "b" or "a"], got.in_order)
      assert.equal(0, ports[n]:stats().learn_holds)
    end
    io.stderr:write(("learn_limit %d: %d new sources in %.2f s (%d holds); known hosts %d + %d frames\n")
      :format(LIMIT, N, took, ports.x:stats().learn_holds, sent.a, sent.b))

    -- learn_limit = 0 lifts it; bad values are refused and change nothing
    S.raises("set: bad option 'learn_limit' %(must be between 0 and 10000000, got %-1%)",
      function() ports.x:set { learn_limit = -1 } end)
    S.raises("port: bad option 'learn_limit' %(must be between 0 and 10000000, got 10000001%)",
      function() sw:port { kind = "socketpair", learn_limit = 10000001 } end)
    S.raises("set: bad option 'learn_burst' %(must be between 1 and 10000000, got 0%)",
      function() ports.x:set { learn_limit = 0, learn_burst = 0 } end)
    assert.equal(LIMIT, ports.x:info().learn_limit)
    ports.x:set { learn_limit = 0 }
    local holds = ports.x:stats().learn_holds
    local again = e.x:start_sending { frame = S.frame(99, 3), count = N, random_src = true, seed = 6 }
    assert.equal(N, again:wait().frames)
    S.eventually(function() return ports.x:stats().rx_frames == 2 * N end, 30, "the second flood")
    assert.equal(holds, ports.x:stats().learn_holds)
    csink:stop()
  end)
end)
