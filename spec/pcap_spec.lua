-- The "pcap" port kind, end to end through the public Lua API: frames the switch sends
-- to it land in a classic pcap file with nanosecond timestamps that tshark and tcpdump
-- read; snaplen; max_size that stops (capture_full) or rotates (path, path.1, ...);
-- write errors (tx_error, file cut back to whole frames); files that become unusable
-- (port down); bad paths and bad options, which leave nothing behind.

local luaswitch = require "luaswitch"
local S = require "support"

-- External tools run without the sanitizer runtime this build may preload into us.
local CLEAN = "env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS -u TSAN_OPTIONS "
local MAGIC_NSEC = 0xa1b23c4d
local FILE_HDR, REC_HDR = 24, 16

-- run a shell command (without the sanitizer, unless keep_env); returns its stdout lines
-- and exit code
local function run(cmd, keep_env)
  local p = io.popen((keep_env and "" or CLEAN) .. cmd .. " 2>/dev/null; echo \"::rc=$?\"")
  local out = p:read("a")
  p:close()
  local rc = tonumber(out:match("::rc=(%d+)%s*$"))
  local lines = {}
  for l in out:gsub("::rc=%d+%s*$", ""):gmatch("[^\n]+") do lines[#lines + 1] = l end
  return lines, rc
end

-- tshark's fields, one row (a list) per frame; fails the spec if tshark fails
local function tshark(path, ...)
  local cmd = ("tshark -n -r '%s' -T fields -E separator=/t"):format(path)
  for _, f in ipairs { ... } do cmd = cmd .. " -e " .. f end
  local lines, rc = run(cmd)
  assert.equal(0, rc, "tshark could not read " .. path)
  local rows = {}
  for _, l in ipairs(lines) do
    local row = {}
    for v in (l .. "\t"):gmatch("([^\t]*)\t") do row[#row + 1] = v end
    rows[#rows + 1] = row
  end
  return rows
end

-- our own reader of a classic little-endian pcap file: header, records
local function read_pcap(path)
  local s = assert(S.read_file(path), "no file " .. path)
  assert(#s >= FILE_HDR, "no file header in " .. path)
  local magic, major, minor, _, _, snaplen, linktype = string.unpack("<I4I2I2i4I4I4I4", s)
  local hdr = { magic = magic, major = major, minor = minor, snaplen = snaplen,
                linktype = linktype, size = #s }
  local recs, pos = {}, FILE_HDR + 1
  while pos <= #s do
    assert(#s - pos + 1 >= REC_HDR, "record header cut short in " .. path)
    local sec, nsec, caplen, len = string.unpack("<I4I4I4I4", s, pos)
    pos = pos + REC_HDR
    assert(#s - pos + 1 >= caplen, "record cut short in " .. path)
    recs[#recs + 1] = { sec = sec, nsec = nsec, caplen = caplen, len = len,
                        data = s:sub(pos, pos + caplen - 1) }
    pos = pos + caplen
  end
  return hdr, recs
end

local function exists(path) return os.execute("test -e '" .. path .. "'") == true end

local function listing(dir)
  local p = io.popen("ls -A '" .. dir .. "'")
  local names = {}
  for l in p:lines() do names[#names + 1] = l end
  p:close()
  table.sort(names)
  return names
end

-- how many of our file descriptors refer to path
local function fds_on(path)
  local p = io.popen("ls -l /proc/" .. S.pid() .. "/fd")
  local n = 0
  for l in p:lines() do
    if l:sub(-#path - 4) == " -> " .. path then n = n + 1 end
  end
  p:close()
  return n
end

-- tcpdump's output: one line per frame, indented continuation lines (hex) not counted
local function tcpdump(path, filter)
  local lines, rc = run(("tcpdump -n -r '%s' '%s'"):format(path, filter))
  assert.equal(0, rc, "tcpdump could not read " .. path)
  local n = 0
  for _, l in ipairs(lines) do
    if not l:match("^%s") then n = n + 1 end
  end
  return n
end

local function sorted(t)
  local c = { table.unpack(t) }
  table.sort(c)
  return c
end

-- every tool of the list is installed, or the spec is marked pending
local function need(...)
  for _, cmd in ipairs { ... } do
    if not S.have(cmd) then
      pending(cmd .. " is not installed (.ci/deps installs it)")
      return false
    end
  end
  return true
end

-- the frame with sequence number n (payload "seq n"), from host `src`, `size` bytes
local function seq_frame(n, src, size)
  return S.frame(src or 1, S.BCAST, { payload = ("seq %d;"):format(n), size = size or 100 })
end

local function seq_of(data) return tonumber(data:match("seq (%d+);")) end

local function drops_total(st)
  local n = 0
  for _, v in pairs(st.drops) do n = n + v end
  return n
end

describe("pcap port", function()
  local dir, sw, ports, eps

  before_each(function()
    dir = S.tmpdir()
    sw = luaswitch.switch { name = "pcap" }
    ports, eps = S.hosts(sw, { "a", "b", "c" })
  end)

  after_each(function()
    for _, ep in pairs(eps) do ep:close() end
    if not sw.closed then S.audit(sw) end
    sw:close()
    S.cleanup()
  end)

  it("captures every flooded frame: tshark and tcpdump read them, timestamps in nanoseconds", function()
    if not need("tshark", "tcpdump") then return end
    local path = dir .. "/cap.pcap"
    local cap = assert(sw:port { kind = "pcap", name = "cap", path = path })
    local info = cap:info()
    assert.equal("pcap", info.kind)
    assert.equal(path, info.path)
    assert.equal("up", info.state)
    assert.is_false(info.offloads)
    -- 5 broadcasts from 02:00:00:00:00:05 on a, 7 from ...:06 on b, 3 multicasts from ...:07 on c
    local sent, lens, bytes = {}, {}, 0
    local function send(ep, src, dst, size)
      local f = S.frame(src, dst, { payload = ("frame %d"):format(#sent + 1), size = size })
      assert.is_true(ep:send(f))
      sent[#sent + 1], lens[#lens + 1], bytes = f, #f, bytes + #f
    end
    for i = 1, 5 do send(eps.a, 5, S.BCAST, 60 + i) end
    for i = 1, 7 do send(eps.b, 6, S.BCAST, 200 + 10 * i) end
    for i = 1, 3 do send(eps.c, 7, "01:00:5e:00:00:fb", 1514 - i) end
    S.eventually(function() return cap:stats().tx_frames == #sent end, 5, "frames in the capture")
    local st = cap:stats()
    assert.equal(#sent, st.tx_queued)
    assert.equal(bytes, st.tx_bytes)
    assert.equal(0, st.rx_frames)
    assert.equal(0, drops_total(st))
    cap:close()

    -- tshark: exactly those frames, their lengths add up to tx_bytes, nanosecond times
    local rows = tshark(path, "frame.len", "frame.cap_len", "frame.time_epoch", "eth.src")
    assert.equal(#sent, #rows)
    local got, total, last = {}, 0, nil
    for _, r in ipairs(rows) do
      got[#got + 1] = tonumber(r[1])
      total = total + tonumber(r[1])
      assert.equal(r[1], r[2]) -- whole frames: snaplen 65535
      local sec, ns = r[3]:match("^(%d+)%.(%d+)$")
      assert.equal(9, #ns, "nanosecond timestamp expected, got " .. r[3])
      local t = { tonumber(sec), tonumber(ns) }
      if last then
        assert.is_true(t[1] > last[1] or (t[1] == last[1] and t[2] >= last[2]), "timestamps go back")
      end
      last = t
    end
    assert.equal(st.tx_bytes, total)
    assert.same(sorted(lens), sorted(got))
    -- and they are the time the switch wrote them: now, give or take
    assert.is_true(math.abs(last[1] - os.time()) < 60)

    -- tcpdump finds exactly the frames of one host
    assert.equal(5, tcpdump(path, "ether src 02:00:00:00:00:05"))
    assert.equal(7, tcpdump(path, "ether src 02:00:00:00:00:06"))
    assert.equal(3, tcpdump(path, "ether multicast and not ether broadcast"))

    -- the file itself: nanosecond magic, Ethernet, the frames byte for byte
    local hdr, recs = read_pcap(path)
    assert.equal(MAGIC_NSEC, hdr.magic)
    assert.equal(2, hdr.major)
    assert.equal(4, hdr.minor)
    assert.equal(1, hdr.linktype) -- DLT_EN10MB
    assert.equal(65535, hdr.snaplen)
    local data = {}
    for _, r in ipairs(recs) do
      assert.is_true(r.nsec < 1e9)
      data[#data + 1] = r.data
    end
    assert.same(sorted(sent), sorted(data))
    assert.equal(FILE_HDR + #sent * REC_HDR + bytes, hdr.size)
  end)

  it("is a destination like any port: static entries, unknown unicast, jumbo frames", function()
    local path = dir .. "/cap.pcap"
    local cap = assert(sw:port { kind = "pcap", name = "cap", path = path })
    assert.equal(65514, cap:info().mtu) -- a capture takes every frame, unless told otherwise
    -- a MAC the table puts on the capture port: unicast goes there and nowhere else
    assert(sw:fdb_add(S.mac(99), cap))
    local f1 = S.frame(1, 99, { payload = "to the capture" })
    eps.a:send(f1)
    -- unknown unicast floods, the capture included
    local f2 = S.frame(1, 98, { payload = "unknown" })
    eps.a:send(f2)
    assert.equal(f2, eps.b:recv(1))
    assert.equal(f2, eps.c:recv(1))
    -- unicast to a MAC learned on c: only c (mirroring is not the capture port's job)
    eps.c:send(S.frame(3, S.BCAST))
    assert.truthy(eps.a:recv(1))
    assert.truthy(eps.b:recv(1))
    local f3 = S.frame(1, 3, { payload = "to c" })
    eps.a:send(f3)
    assert.equal(f3, eps.c:recv(1))
    -- a jumbo frame from a port with a 9000-byte MTU
    ports.a:set { mtu = 9000 }
    local big = S.frame(1, S.BCAST, { size = 9014 })
    eps.a:send(big)
    S.eventually(function() return cap:stats().tx_frames == 4 end, 5, "frames in the capture")
    assert.equal(0, cap:stats().drops.tx_mtu)
    cap:close()
    local hdr, recs = read_pcap(path)
    assert.equal(MAGIC_NSEC, hdr.magic)
    local data = {}
    for _, r in ipairs(recs) do data[#data + 1] = r.data end
    assert.same({ f1, f2, S.frame(3, S.BCAST), big }, data)
  end)

  it("keeps snaplen bytes of a frame and records its whole length", function()
    if not need("tshark") then return end
    local path = dir .. "/cap.pcap"
    local cap = assert(sw:port { kind = "pcap", name = "cap", path = path, snaplen = 64 })
    eps.a:send(S.frame(1, S.BCAST, { size = 1000 }))
    eps.a:send(S.frame(1, S.BCAST, { size = 60 }))
    S.eventually(function() return cap:stats().tx_frames == 2 end, 5, "frames in the capture")
    assert.equal(1060, cap:stats().tx_bytes)
    cap:close()
    local rows = tshark(path, "frame.len", "frame.cap_len")
    assert.same({ { "1000", "64" }, { "60", "60" } }, rows)
    local hdr, recs = read_pcap(path)
    assert.equal(64, hdr.snaplen)
    assert.equal(64, #recs[1].data)
    assert.equal(FILE_HDR + 2 * REC_HDR + 64 + 60, hdr.size)
  end)

  it("stops at max_size with rotate = 0 and counts the frames that do not fit", function()
    if not need("tshark") then return end
    local path = dir .. "/cap.pcap"
    local max = FILE_HDR + 4 * (REC_HDR + 100) + 50 -- room for 4 frames of 100 bytes
    local cap = assert(sw:port { kind = "pcap", name = "cap", path = path, max_size = max })
    for i = 1, 10 do eps.a:send(seq_frame(i)) end
    S.eventually(function()
      local st = cap:stats()
      return st.tx_frames + st.drops.capture_full == 10
    end, 5, "frames written or dropped")
    -- the capture has ended: even a frame that would fit in what is left is not written
    eps.a:send(S.frame(1, S.BCAST, { size = 20 }))
    S.eventually(function() return cap:stats().drops.capture_full == 7 end, 5, "capture_full")
    local st = cap:stats()
    assert.equal(4, st.tx_frames)
    assert.equal(400, st.tx_bytes)
    assert.equal(0, st.drops.tx_error)
    assert.equal(st.tx_queued, st.tx_frames + drops_total(st) + cap:info().queued)
    assert.equal("up", cap:state()) -- still up: it just writes nothing more
    cap:close()
    local hdr, recs = read_pcap(path)
    assert.equal(FILE_HDR + 4 * (REC_HDR + 100), hdr.size)
    assert.is_true(hdr.size <= max)
    for i, r in ipairs(recs) do assert.equal(i, seq_of(r.data)) end -- a prefix, no gaps
    assert.equal(4, #tshark(path, "frame.len"))
  end)

  it("rotates with rotate = 2: keeps path, path.1 and path.2, each readable, and no more", function()
    if not need("tshark") then return end
    local path = dir .. "/cap.pcap"
    local max = FILE_HDR + 3 * (REC_HDR + 100) -- exactly 3 frames of 100 bytes per file
    local cap = assert(sw:port { kind = "pcap", name = "cap", path = path, max_size = max, rotate = 2 })
    for i = 1, 20 do assert.is_true(eps.a:send(seq_frame(i))) end
    S.eventually(function() return cap:stats().tx_frames == 20 end, 5, "frames in the captures")
    local st = cap:stats()
    assert.equal(0, drops_total(st))
    assert.equal(path, cap:info().path) -- always the newest file
    cap:close()
    assert.same({ "cap.pcap", "cap.pcap.1", "cap.pcap.2" }, listing(dir))
    -- 20 frames, 3 per file: the newest holds 19-20, .1 holds 16-18, .2 holds 13-15
    local want = { [path] = { 19, 20 }, [path .. ".1"] = { 16, 17, 18 }, [path .. ".2"] = { 13, 14, 15 } }
    for file, seqs in pairs(want) do
      local hdr, recs = read_pcap(file)
      assert.equal(MAGIC_NSEC, hdr.magic)
      assert.is_true(hdr.size <= max)
      local got = {}
      for _, r in ipairs(recs) do got[#got + 1] = seq_of(r.data) end
      assert.same(seqs, got)
      assert.equal(#seqs, #tshark(file, "frame.len"))
    end
  end)

  it("drops a frame larger than a whole file as capture_full when rotating", function()
    local path = dir .. "/cap.pcap"
    local cap = assert(sw:port { kind = "pcap", name = "cap", path = path, max_size = 200, rotate = 1 })
    eps.a:send(S.frame(1, S.BCAST, { size = 300 }))
    eps.a:send(S.frame(1, S.BCAST, { size = 100 }))
    S.eventually(function() return cap:stats().tx_frames == 1 end, 5, "the small frame")
    local st = cap:stats()
    assert.equal(1, st.drops.capture_full)
    assert.equal(100, st.tx_bytes)
    cap:close()
    assert.same({ "cap.pcap" }, listing(dir)) -- nothing to rotate away
    local _, recs = read_pcap(path)
    assert.equal(1, #recs)
    assert.equal(100, recs[1].len)
  end)

  it("counts a failed write as tx_error, cuts the file back to whole frames and keeps going", function()
    if not need("tshark") then return end
    -- A child process whose file size limit (RLIMIT_FSIZE, SIGXFSZ ignored) makes writes
    -- fail with EFBIG part-way through the capture, as a full disk would with ENOSPC.
    local path = dir .. "/cap.pcap"
    local script = dir .. "/child.lua"
    local f = assert(io.open(script, "w"))
    f:write(([[
      local luaswitch = require "luaswitch"
      local frame = require "luaswitch.frame"
      local sw = luaswitch.switch "child"
      local a = sw:port { kind = "socketpair", name = "a" }
      local ep = a:endpoint()
      local cap = assert(sw:port { kind = "pcap", name = "cap", path = %q })
      local errors = {}
      sw:on("error", function(ev) errors[#errors + 1] = ev end)
      for i = 1, 100 do
        ep:send(frame.ethernet { src = frame.mac(1), dst = frame.BROADCAST,
                                 payload = ("seq %%d;"):format(i), size = 100 })
        assert(luaswitch.wait_until(function()
          local st = cap:stats()
          return st.tx_frames + st.drops.tx_error == i
        end, 5))
      end
      luaswitch.wait_until(function() return #errors > 0 end, 2)
      local st = cap:stats()
      print("tx_frames", st.tx_frames)
      print("tx_error", st.drops.tx_error)
      print("tx_bytes", st.tx_bytes)
      print("state", (cap:state()))
      print("errors", #errors)
      for _, ev in ipairs(errors) do print("error", ev.code, ev.where, ev.port.name) end
      ep:close()
      sw:close()
    ]]):format(path))
    f:close()
    -- the child is this build's Lua (with its sanitizer, if any): keep the environment
    local out, rc = run(("sh -c \"trap '' XFSZ; ulimit -f 8; exec %s '%s'\""):format(S.LUA, script), true)
    assert.equal(0, rc, table.concat(out, "\n"))
    local r = {}
    for _, l in ipairs(out) do
      local k, v = l:match("^(%S+)\t(.*)$")
      if k and k ~= "error" then r[k] = v end
    end
    local written, failed = tonumber(r.tx_frames), tonumber(r.tx_error)
    assert.is_true(written > 0 and failed > 0, table.concat(out, "\n"))
    assert.equal(100, written + failed)
    assert.equal(written * 100, tonumber(r.tx_bytes))
    assert.equal("up", r.state) -- it keeps going
    assert.equal("1", r.errors) -- one event for the run of failures
    assert.matches("^error\tEFBIG\ttx\tcap$", out[#out])
    -- the file holds exactly the frames counted, whole, in order
    local hdr, recs = read_pcap(path)
    assert.equal(FILE_HDR + written * (REC_HDR + 100), hdr.size)
    assert.equal(written, #recs)
    for i, rec in ipairs(recs) do assert.equal(i, seq_of(rec.data)) end
    assert.equal(written, #tshark(path, "frame.len"))
  end)

  it("goes down with an event when rotation cannot create the next file", function()
    os.execute("mkdir '" .. dir .. "/sub'")
    local path = dir .. "/sub/cap.pcap"
    local rec = S.record(sw, { "port", "error" })
    local max = FILE_HDR + 3 * (REC_HDR + 100)
    local cap = assert(sw:port { kind = "pcap", name = "cap", path = path, max_size = max, rotate = 1 })
    for i = 1, 3 do eps.a:send(seq_frame(i)) end
    S.eventually(function() return cap:stats().tx_frames == 3 end, 5, "3 frames")
    os.execute("rm -rf '" .. dir .. "/sub'") -- the directory goes away under the capture
    eps.a:send(seq_frame(4)) -- needs a new file
    S.eventually(function() return #rec.port == 1 and #rec.error == 1 end, 5, "port and error events")
    assert.equal("ENOENT", rec.error[1].code)
    assert.equal("tx", rec.error[1].where)
    assert.equal(cap, rec.error[1].port)
    assert.equal("down", rec.port[1].state)
    assert.equal("error", rec.port[1].reason)
    assert.is_true(rec.port[1].admin)
    assert.is_false(rec.port[1].link)
    local st = cap:stats()
    assert.equal(3, st.tx_frames)
    assert.equal(1, st.drops.tx_error)
    -- the switch stops forwarding to it
    eps.a:send(seq_frame(5))
    assert.truthy(eps.b:recv(1))
    assert.equal(st.tx_queued, cap:stats().tx_queued)
    assert.equal("down", (cap:state()))
  end)

  it("returns nil, message, code for a path it cannot create, and leaves nothing", function()
    local n = #sw:ports()
    local p, msg, code = sw:port { kind = "pcap", name = "cap", path = dir .. "/no/such/dir/cap.pcap" }
    assert.is_nil(p)
    assert.equal("ENOENT", code)
    assert.matches("^ENOENT: .*%(open " .. dir:gsub("%p", "%%%0") .. "/no/such/dir/cap%.pcap%)$", msg)
    -- a directory is not a capture file
    p, msg, code = sw:port { kind = "pcap", name = "cap", path = dir }
    assert.is_nil(p)
    assert.equal("EINVAL", code)
    assert.matches("is not a regular file", msg)
    assert.equal(n, #sw:ports())
    assert.same({}, listing(dir))
  end)

  it("rejects bad options with an error naming the option, and creates nothing", function()
    local path = dir .. "/cap.pcap"
    local function rejects(pattern, opts)
      opts.kind, opts.name = "pcap", "cap"
      if opts.path == nil then opts.path = path end
      if opts.path == false then opts.path = nil end
      local ok, err = pcall(sw.port, sw, opts)
      assert.is_false(ok)
      assert.matches(pattern, err)
    end
    rejects("bad option 'snaplen' %(must be between 14 and 262144, got 0%)", { snaplen = 0 })
    rejects("bad option 'snaplen' %(integer expected, got string%)", { snaplen = "big" })
    rejects("bad option 'max_size' %(must be between 100 and %d+, got %-1%)", { max_size = -1 })
    rejects("bad option 'max_size' %(must be between 100 and %d+, got 99%)", { max_size = 99 })
    rejects("bad option 'rotate' %(must be between 0 and 1000, got %-1%)", { rotate = -1, max_size = 1000 })
    rejects("bad option 'rotate' %(needs 'max_size'", { rotate = 2 })
    rejects([[bad option 'format' %("pcapng" is not available: libpcap writes classic pcap only%)]],
      { format = "pcapng" })
    rejects([[bad option 'format' %("pcap" expected, got "csv"%)]], { format = "csv" })
    rejects("missing option 'path' for a pcap port", { path = false })
    rejects("bad option 'path' %(longer than 127 bytes%)", { path = "/tmp/" .. string.rep("x", 123) })
    rejects("unknown option 'filter'", { filter = "tcp" })
    assert.equal(3, #sw:ports())
    assert.same({}, listing(dir))
  end)

  it("releases its file when closed: no descriptor left, the capture complete", function()
    local path = dir .. "/cap.pcap"
    local cap = assert(sw:port { kind = "pcap", name = "cap", path = path })
    assert.equal(1, fds_on(path))
    local hdr = read_pcap(path) -- the header is there from the start: an empty capture reads
    assert.equal(FILE_HDR, hdr.size)
    eps.a:send(S.frame(1, S.BCAST))
    S.eventually(function() return cap:stats().tx_frames == 1 end, 5, "a frame")
    cap:close()
    assert.equal(0, fds_on(path))
    assert.equal(FILE_HDR + REC_HDR + 60, read_pcap(path).size)
    assert.is_true(exists(path)) -- a capture outlives its port
  end)
end)
