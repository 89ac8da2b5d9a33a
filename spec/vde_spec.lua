-- VDE ports: the switch side of the VDE plug protocol, against Debian's real vde_plug
-- (vdeplug4). vde_plug bridges our vde port to a ptp:// socket that a luaswitch.endpoint
-- plays the other side of (or, as root, to a TAP device in a namespace with tap://).
-- Bad clients are a small Python 3 script that speaks (or mis-speaks) the protocol.
-- Every process started here is killed and waited for in after_each, spec failing or not.

local luaswitch = require "luaswitch"
local netns = require "luaswitch.netns"
local S = require "support"

local HAVE_PLUG = S.have("vde_plug")
local HAVE_PY = S.have("python3")
-- Under ASan the specs run with the sanitizer runtime preloaded; programs we start must
-- not inherit it (vde_plug dlopens its plugins with RTLD_DEEPBIND, which ASan refuses).
local PLUG = "env -u LD_PRELOAD vde_plug"
local PYTHON = "env -u LD_PRELOAD python3"

local function needs(cond, what)
  if not cond then pending("needs " .. what) return true end
end

-- ---- background processes --------------------------------------------------------------

local procs = {}

local function alive(pid)
  local stat = S.read_file("/proc/" .. pid .. "/stat")
  return stat ~= nil and stat:match("^%d+ %b() (%a)") ~= "Z"
end

--- Start a shell command in the background; returns { pid =, log = }.
local function spawn(cmd)
  local log = os.tmpname()
  local p = io.popen(("%s >%s 2>&1 </dev/null & echo $!"):format(cmd, netns.quote(log)))
  local pid = tonumber(p:read("l"))
  p:close()
  local proc = { pid = pid, log = log, cmd = cmd }
  procs[#procs + 1] = proc
  return proc
end

local function kill(proc, sig)
  os.execute(("kill -%s %d 2>/dev/null"):format(sig or "TERM", proc.pid))
end

--- Wait (dispatching events) until the process is gone; false after the timeout.
local function wait_gone(proc, timeout)
  return luaswitch.wait_until(function() return not alive(proc.pid) end, timeout or 5) and true or false
end

local function output(proc)
  return S.read_file(proc.log) or ""
end

local function reap_all()
  for _, proc in ipairs(procs) do
    if alive(proc.pid) then
      kill(proc, "KILL")
      wait_gone(proc, 2)
    end
    os.remove(proc.log)
  end
  procs = {}
end

--- Run a command to completion; returns its output and exit status.
local function run(cmd)
  local p = io.popen("(" .. cmd .. ") 2>&1; echo \"rc=$?\"")
  local out = p:read("a")
  p:close()
  return out:gsub("rc=%d+%s*$", ""), tonumber(out:match("rc=(%d+)%s*$"))
end

-- ---- a bad (or good) client in Python ----------------------------------------------------

-- python3 badclient.py CTL CASE [PATH]: connects to CTL, sends the request of CASE, and
-- prints "closed SECONDS" when the switch closes the connection, or "reply N" when it
-- answers. CASE "own" binds its data socket at PATH, and once answered sends a frame and
-- prints "reply N DATA_SOCKET OWNER_UID"; "foreign" names PATH, a socket not its own.
local BADCLIENT = [[
import os, socket, struct, sys, time
ctl, case = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(ctl)
def sock(path, family=socket.AF_UNIX):
    return struct.pack("=H108s", family, path.encode())
def req(magic=0xfeedface, version=3, typ=0, addr=None):
    return struct.pack("=III", magic, version, typ) + (addr or sock("/nonexistent/x")) + b"badclient"
payload = {
    "magic": req(magic=0xdeadbeef),
    "version": req(version=2),
    "type": req(typ=7),
    "family": req(addr=sock("/tmp/x", socket.AF_INET)),
    "noaddr": req(addr=b"\x01\x00" + bytes(108)),
    "nosocket": req(),
    "garbage": b"GET / HTTP/1.0\r\n\r\n" + bytes(200),
    "short": req()[:40],
    "silent": b"",
    "own": req(addr=sock(sys.argv[-1])),
    "foreign": req(addr=sock(sys.argv[-1])),
}[case]
if case == "own":
    d = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    d.bind(sys.argv[3])
if payload:
    s.sendall(payload)
if case == "short":
    s.shutdown(socket.SHUT_WR)
s.settimeout(6)
t0 = time.monotonic()
try:
    data = s.recv(512)
except socket.timeout:
    print("timeout")
    sys.exit(1)
except ConnectionResetError:
    data = b""
if data and case == "own":
    path = data[2:].split(b"\0")[0].decode()
    d.connect(path)
    d.send(b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x07" + b"\x08\x00" + bytes(46))
    print("reply %d %s %d" % (len(data), path, os.stat(path).st_uid))
    time.sleep(0.3)  # let the switch read the frame before the hang-up closes the data socket
    sys.exit(0)
print("closed %.2f" % (time.monotonic() - t0) if data == b"" else "reply %d" % len(data))
]]

local function badclient(dir, case, path, as)
  local script = dir .. "/badclient.py"
  if not S.read_file(script) then
    local f = assert(io.open(script, "w"))
    f:write(BADCLIENT)
    f:close()
  end
  local python = as and ("env -u LD_PRELOAD setpriv --reuid=%d --regid=%d --clear-groups /usr/bin/python3")
    :format(as, as) or PYTHON
  local out = run(("%s %s %s %s %s"):format(python, script, netns.quote(dir .. "/sw/ctl"), case,
    path and netns.quote(path) or ""))
  return out
end

-- ---- the specs ---------------------------------------------------------------------------

describe("vde ports", function()
  local sw, dir, swdir

  before_each(function()
    dir = S.tmpdir()
    swdir = dir .. "/sw"
    sw = luaswitch.switch "vde"
  end)

  after_each(function()
    reap_all()
    if not sw.closed then S.audit(sw) end
    sw:close()
    S.cleanup()
  end)

  --- vde_plug between our vde port at swdir and a ptp:// socket at dir/NAME, whose other
  -- end is the returned endpoint. Waits until both are plugged.
  local function plug(port, name)
    local ep = luaswitch.endpoint { path = dir .. "/" .. name .. "+" }
    local proc = spawn(("%s vde://%s ptp://%s/%s"):format(PLUG, swdir, dir, name))
    S.eventually(function() return port:state() == "up" end, 5, "vde_plug to connect")
    S.eventually(function() return ep:connect(dir .. "/" .. name) end, 5, "vde_plug's ptp socket")
    return proc, ep
  end

  it("let vde_plug connect, and frames pass both ways", function()
    if needs(HAVE_PLUG, "vde_plug (Debian package vdeplug)") then return end
    local rec = S.record(sw, { "port" })
    local v = assert(sw:port { kind = "vde", name = "v", path = swdir })
    local a = sw:port { kind = "socketpair", name = "a" }
    local ea = a:endpoint()
    assert.equal("down", v:state())
    assert.equal("vde", v.kind)
    assert.equal(swdir, v:info().path)
    assert.is_true(os.execute("test -d " .. swdir .. " && test -S " .. swdir .. "/ctl"))
    assert.equal("700", run("stat -c %a " .. swdir):match("%d+"))
    local proc, ep = plug(v, "p")
    -- vde_plug's data socket was bound in the directory; its name is the peer
    assert.matches("^" .. swdir:gsub("%p", "%%%0") .. "/%.%d+%-%d+$", v:info().peer)
    ep:send(S.frame(1, S.BCAST))
    assert.equal(S.frame(1, S.BCAST), ea:recv(2))
    ea:send(S.frame(2, 1))
    assert.equal(S.frame(2, 1), ep:recv(2))
    -- large frames too, up to the MTU
    ep:send(S.frame(1, 2, { size = 1514 }))
    assert.equal(1514, #ea:recv(2))
    ea:send(S.frame(2, 1, { size = 1514 }))
    assert.equal(1514, #ep:recv(2))
    local st = v:stats()
    assert.equal(2, st.rx_frames)
    assert.equal(2, st.tx_frames)
    S.eventually(function() return #rec.port == 1 end, 2, "port event")
    assert.equal("up", rec.port[1].state)
    assert.equal("peer", rec.port[1].reason)
    assert.is_true(alive(proc.pid), output(proc))
    ea:close(); ep:close()
  end)

  it("deliver bursts whole through vde_plug both ways, waiting instead of dropping", function()
    if needs(HAVE_PLUG, "vde_plug") then return end
    local v = assert(sw:port { kind = "vde", name = "v", path = swdir })
    local a = sw:port { kind = "socketpair", name = "a" }
    local ea = a:endpoint()
    local _, ep = plug(v, "p")
    ep:send(S.frame(2, S.BCAST)) -- learn the far side's MAC on v
    assert.truthy(ea:recv(2))
    local n = 5000
    local sink = ep:start_receiving { seq_offset = 14 }
    local sender = ea:start_sending { frame = S.frame(1, 2, { size = 64 }), count = n, seq_offset = 14 }
    assert.equal(n, sender:wait { timeout = 20 }.frames)
    local got = sink:wait { frames = n, timeout = 10 }
    assert.equal(n, got.frames)
    assert.equal(n, got.in_order)
    assert.equal(0, got.gaps)
    local st = v:stats()
    assert.equal(0, st.drops.tx_full)
    assert.equal(n, st.tx_frames)
    -- and the other way: vde_plug's blocking sends wait on our data socket
    sink = ea:start_receiving { seq_offset = 14 }
    sender = ep:start_sending { frame = S.frame(2, 1, { size = 64 }), count = n, seq_offset = 14 }
    assert.equal(n, sender:wait { timeout = 20 }.frames)
    got = sink:wait { frames = n, timeout = 10 }
    assert.equal(n, got.frames)
    assert.equal(n, got.in_order)
    assert.equal(n + 1, v:stats().rx_frames)
    ea:close(); ep:close()
  end)

  it("go down when vde_plug dies (port event, hangup), idle, and take the next vde_plug", function()
    if needs(HAVE_PLUG, "vde_plug") then return end
    local rec = S.record(sw, { "port" })
    local v = assert(sw:port { kind = "vde", name = "v", path = swdir })
    local a = sw:port { kind = "socketpair", name = "a" }
    local ea = a:endpoint()
    local proc, ep = plug(v, "p1")
    ep:send(S.frame(1, S.BCAST))
    assert.truthy(ea:recv(2))
    local data_sock = run("ls " .. swdir):match("data%.%d+")
    assert.truthy(data_sock)
    kill(proc, "KILL")
    assert.is_true(wait_gone(proc))
    S.eventually(function() return v:state() == "down" end, 3, "port down")
    S.eventually(function() return #rec.port == 2 end, 2, "port events")
    assert.equal("down", rec.port[2].state)
    assert.equal("hangup", rec.port[2].reason)
    assert.equal(v, rec.port[2].port)
    assert.equal(1, v:stats().hangups)
    assert.is_nil(v:info().peer)
    -- its data socket is gone; ctl stays
    assert.is_not_true(os.execute("test -e " .. swdir .. "/" .. data_sock))
    assert.is_true(os.execute("test -S " .. swdir .. "/ctl"))
    -- MACs learned there are forgotten
    for _, e in ipairs(sw:fdb()) do assert.is_not.equal(v, e.port) end
    -- the data plane goes idle
    local cpu0 = S.dataplane_cpu()
    luaswitch.dispatch(0.5)
    local used = S.dataplane_cpu() - cpu0
    assert.is_true(used < 0.02, ("data plane used %.3f s of CPU in 0.5 s"):format(used))
    -- and the next vde_plug is served
    local _, ep2 = plug(v, "p2")
    ep2:send(S.frame(3, S.BCAST))
    assert.equal(S.frame(3, S.BCAST), ea:recv(2))
    ea:send(S.frame(2, 3))
    assert.equal(S.frame(2, 3), ep2:recv(2))
    S.eventually(function() return #rec.port == 3 end, 2, "third port event")
    assert.same({ "up", "down", "up" }, { rec.port[1].state, rec.port[2].state, rec.port[3].state })
    ea:close(); ep:close(); ep2:close()
  end)

  it("refuse a second client while one is connected, and count it (busy)", function()
    if needs(HAVE_PLUG, "vde_plug") then return end
    local v = assert(sw:port { kind = "vde", name = "v", path = swdir })
    local a = sw:port { kind = "socketpair", name = "a" }
    local ea = a:endpoint()
    local _, ep = plug(v, "p1")
    local out, rc = run(("timeout 5 %s vde://%s ptp://%s/p2"):format(PLUG, swdir, dir))
    assert.is_not.equal(0, rc, out)
    assert.matches("vde_open", out)
    assert.equal(1, v:stats().drops.busy)
    -- the first client is undisturbed
    assert.equal("up", v:state())
    ep:send(S.frame(1, S.BCAST))
    assert.truthy(ea:recv(2))
    ea:send(S.frame(2, 1))
    assert.truthy(ep:recv(2))
    ea:close(); ep:close()
  end)

  it("refuse and count malformed requests, changing nothing; a good client works after", function()
    if needs(HAVE_PLUG and HAVE_PY, "vde_plug and python3") then return end
    local rec = S.record(sw, { "port", "error" })
    local v = assert(sw:port { kind = "vde", name = "v", path = swdir })
    local cases = { "magic", "version", "type", "family", "noaddr", "garbage", "short" }
    for _, case in ipairs(cases) do
      local out = badclient(dir, case)
      assert.matches("^closed", out, case .. ": " .. out)
    end
    assert.equal(#cases, v:stats().drops.bad_request)
    -- a well-formed request naming a socket that does not exist: refused, with an error event
    assert.matches("^closed", badclient(dir, "nosocket"))
    assert.equal(#cases + 1, v:stats().drops.bad_request)
    S.eventually(function() return #rec.error == 1 end, 2, "error event")
    assert.equal("ENOENT", rec.error[1].code)
    -- a client that says nothing is dropped after the handshake timeout (2 s)
    local out = badclient(dir, "silent")
    local secs = tonumber(out:match("^closed ([%d.]+)"))
    assert.truthy(secs, out)
    assert.is_true(secs > 1.5 and secs < 4, out)
    assert.equal(#cases + 2, v:stats().drops.bad_request)
    -- nothing else happened: no port event, still down, no stray files
    luaswitch.dispatch(0.05)
    assert.equal(0, #rec.port)
    assert.equal("down", v:state())
    assert.equal(0, v:stats().drops.busy)
    assert.equal("ctl", (run("ls -A " .. swdir):gsub("%s+$", "")))
    -- and a real client is served
    local a = sw:port { kind = "socketpair", name = "a" }
    local ea = a:endpoint()
    local _, ep = plug(v, "p")
    ep:send(S.frame(1, S.BCAST))
    assert.truthy(ea:recv(2))
    ea:close(); ep:close()
  end)

  it("serve another user's client naming its own socket, refuse one naming someone else's", function()
    if not S.is_root() then pending("needs root (to run a client as nobody)") return end
    if needs(HAVE_PY and S.have("setpriv"), "python3 and setpriv") then return end
    local NOBODY = 65534
    os.execute("chmod 755 " .. dir)
    local rec = S.record(sw, { "port", "error" })
    local v = assert(sw:port { kind = "vde", name = "v", path = swdir, mode = "0777" })
    local a = sw:port { kind = "socketpair", name = "a" }
    local ea = a:endpoint()
    -- a socket of root's, which nobody's client must not get our frames sent to
    local rootsock = luaswitch.endpoint { path = dir .. "/root.sock" }
    local out = badclient(dir, "foreign", dir .. "/root.sock", NOBODY)
    assert.matches("^closed", out)
    assert.equal(1, v:stats().drops.bad_request)
    S.eventually(function() return #rec.error == 1 end, 2, "error event")
    assert.equal("EACCES", rec.error[1].code)
    assert.equal(0, #rec.port)
    -- its own socket: served, with the data socket given to it
    out = badclient(dir, "own", swdir .. "/.nobody", NOBODY)
    local path, uid = out:match("^reply 110 (%S+) (%d+)")
    assert.truthy(path, out)
    assert.matches("^" .. swdir:gsub("%p", "%%%0") .. "/data%.%d+$", path)
    assert.equal(NOBODY, tonumber(uid))
    local f = ea:recv(2) -- the frame it sent once plugged
    assert.truthy(f)
    assert.equal("02:00:00:00:00:07", require("luaswitch.frame").parse(f).src)
    S.eventually(function() return #rec.port == 2 end, 2, "up and down") -- it exited: hang-up
    assert.equal("hangup", rec.port[2].reason)
    assert.is_nil(rootsock:recv(0.05))
    rootsock:close(); ea:close()
  end)

  it("accept data only from the client: others are refused by the kernel", function()
    if needs(HAVE_PLUG, "vde_plug") then return end
    local v = assert(sw:port { kind = "vde", name = "v", path = swdir })
    local a = sw:port { kind = "socketpair", name = "a" }
    local ea = a:endpoint()
    local _, ep = plug(v, "p")
    local data_sock = swdir .. "/" .. run("ls " .. swdir):match("data%.%d+")
    local intruder = luaswitch.endpoint { path = dir .. "/intruder" }
    local ok, _, code = intruder:connect(data_sock)
    assert.is_nil(ok)
    assert.equal("EPERM", code)
    local anon = luaswitch.endpoint {}
    ok, _, code = anon:connect(data_sock)
    assert.is_nil(ok)
    assert.equal("EPERM", code)
    assert.is_nil(ea:recv(0.1))
    assert.equal(0, v:stats().rx_frames)
    assert.equal(0, v:stats().drops.bad_peer)
    intruder:close(); anon:close(); ea:close(); ep:close()
  end)

  it("remove every file and fd on close, and hang up on vde_plug", function()
    if needs(HAVE_PLUG, "vde_plug") then return end
    local fds = S.fd_count()
    local v = assert(sw:port { kind = "vde", name = "v", path = swdir })
    local proc, ep = plug(v, "p")
    assert.is_true(S.fd_count() > fds)
    v:close()
    assert.is_not_true(os.execute("test -e " .. swdir))
    assert.is_true(wait_gone(proc), "vde_plug still runs after the port closed")
    ep:close()
    S.eventually(function() return S.fd_count() == fds end, 2, "fds back to " .. fds)
  end)

  it("take over an empty directory (kept at close) or a dead switch's (removed)", function()
    if needs(HAVE_PY, "python3") then return end
    os.execute("mkdir " .. swdir)
    local v = assert(sw:port { kind = "vde", name = "v", path = swdir })
    v:close()
    assert.is_true(os.execute("test -d " .. swdir))
    assert.equal("", run("ls -A " .. swdir))
    -- sockets nobody is bound to: what a killed vde_switch or luaswitch leaves
    run((PYTHON .. " -c \"import socket\nfor n in ('ctl', '001.5', '.123-00000'):\n" ..
         "  s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind('%s/' + n)\""):format(swdir))
    assert.is_true(os.execute("test -S " .. swdir .. "/001.5"))
    v = assert(sw:port { kind = "vde", name = "v", path = swdir })
    assert.equal("ctl", (run("ls -A " .. swdir):gsub("%s+$", "")))
    v:close()
    assert.is_not_true(os.execute("test -e " .. swdir))
  end)

  it("refuse a path that is not an empty or dead VDE directory, changing nothing", function()
    local v1 = assert(sw:port { kind = "vde", name = "v1", path = swdir })
    -- a live switch there (us)
    local p, msg, code = sw:port { kind = "vde", name = "v2", path = swdir }
    assert.is_nil(p)
    assert.equal("EADDRINUSE", code)
    assert.matches(swdir .. "/ctl is in use", msg, 1, true)
    assert.is_true(os.execute("test -S " .. swdir .. "/ctl"))
    assert.equal(0, v1:stats().drops.bad_request + v1:stats().drops.busy) -- the probe came and went
    -- a directory with something else in it
    os.execute("mkdir " .. dir .. "/full && touch " .. dir .. "/full/notes.txt")
    p, msg, code = sw:port { kind = "vde", name = "v2", path = dir .. "/full" }
    assert.is_nil(p)
    assert.equal("ENOTEMPTY", code)
    assert.matches("notes.txt", msg)
    assert.is_true(os.execute("test -f " .. dir .. "/full/notes.txt"))
    -- not a directory (a file, a symlink to a directory)
    os.execute("touch " .. dir .. "/file && ln -s " .. swdir .. " " .. dir .. "/link")
    p, msg, code = sw:port { kind = "vde", name = "v2", path = dir .. "/file" }
    assert.is_nil(p)
    assert.equal("ENOTDIR", code)
    p, msg, code = sw:port { kind = "vde", name = "v2", path = dir .. "/link" }
    assert.is_nil(p)
    assert.equal("ENOTDIR", code)
    -- too long for the sockets inside it
    p, msg, code = sw:port { kind = "vde", name = "v2", path = dir .. "/" .. string.rep("d", 80) }
    assert.is_nil(p)
    assert.equal("ENAMETOOLONG", code)
    assert.is_not_true(os.execute("test -e " .. dir .. "/" .. string.rep("d", 80)))
    -- no such parent
    p, msg, code = sw:port { kind = "vde", name = "v2", path = dir .. "/no/such" }
    assert.is_nil(p)
    assert.equal("ENOENT", code)
    assert.equal(1, #sw:ports())
    -- the survivor still works
    assert.equal("down", v1:state())
  end)

  it("take a mode for the directory (octal string) and give its sockets the same bits", function()
    local v = assert(sw:port { kind = "vde", name = "v", path = swdir, mode = "0770" })
    assert.equal("770", run("stat -c %a " .. swdir):match("%d+"))
    assert.equal("660", run("stat -c %a " .. swdir .. "/ctl"):match("%d+"))
    v:close()
    assert.has_error(function() sw:port { kind = "vde", name = "x", path = swdir, mode = 0770 } end,
      "port: bad option 'mode' (an octal string like \"0770\" expected, got a number)")
    assert.has_error(function() sw:port { kind = "vde", name = "x", path = swdir, mode = "0789" } end,
      "port: bad option 'mode' (an octal string like \"0770\" expected, got '0789')")
    assert.has_error(function() sw:port { kind = "vde", name = "x" } end,
      "port: missing option 'path' for a vde port")
    assert.has_error(function() sw:port { kind = "vde", name = "x", path = swdir, peer = "y" } end)
    assert.equal(0, #sw:ports())
    assert.is_not_true(os.execute("test -e " .. swdir))
  end)

  it("idle while listening with nobody connected", function()
    assert(sw:port { kind = "vde", name = "v", path = swdir })
    local cpu0 = S.dataplane_cpu()
    luaswitch.dispatch(0.3)
    assert.is_true(S.dataplane_cpu() - cpu0 < 0.02, "the data plane spins")
  end)
end)

describe("vde ports and kernel hosts #root", function()
  local sw, dir, made

  local function ns(tag)
    local n = assert(netns.create(S.uniq(tag)))
    made[#made + 1] = n
    return n
  end

  before_each(function()
    made = {}
    dir = S.tmpdir()
    sw = luaswitch.switch "vdek"
  end)

  after_each(function()
    sw:close()
    for i = #made, 1, -1 do made[i]:close() end -- kills vde_plug inside, deletes the namespace
    reap_all()
    S.cleanup()
  end)

  it("carry a namespace's traffic from vde_plug's tap:// to a host on a TAP port", function()
    if not S.is_root() then pending("needs root (namespaces, TAP)") return end
    if needs(HAVE_PLUG, "vde_plug") then return end
    local h1, h2 = ns("vk1"), ns("vk2")
    assert(sw:port { kind = "tap", name = "h1", ifname = "eth0", netns = h1.name,
                     addresses = { "10.0.9.1/24" } })
    local v = assert(sw:port { kind = "vde", name = "h2", path = dir .. "/sw" })
    -- vde_plug, inside h2, plugs our vde port into a TAP device it creates there
    local plugproc = h2:spawn(("%s vde://%s/sw tap://eth0"):format(PLUG, dir))
    S.eventually(function() return v:state() == "up" end, 5, "vde_plug to connect")
    S.eventually(function() return select(2, h2:run("ip link show eth0")) == 0 end, 5, "tap eth0 in h2")
    h2:check("ip addr add 10.0.9.2/24 dev eth0 && ip link set eth0 up")
    h1:check("ping -c 3 -i 0.2 -W 2 10.0.9.2")
    h2:check("ping -c 3 -i 0.2 -W 2 10.0.9.1")
    local mac = h2:check("cat /sys/class/net/eth0/address"):gsub("%s+", "")
    local on
    for _, e in ipairs(sw:fdb()) do if e.mac == mac then on = e.port end end
    assert.equal(v, on)
    if S.have("iperf3") then
      -- h1's TAP hands us 64 KiB TSO frames: they leave through the vde port segmented
      local gbps, out = S.iperf(h1, h2, "10.0.9.2", 2)
      assert.truthy(gbps, out)
      print(("    TCP TAP -> vde_plug tap://: %.2f Gbit/s"):format(gbps))
      assert.equal(0, v:stats().drops.tx_mtu)
    end
    -- vde_plug going away takes the port down
    plugproc:kill("KILL")
    S.eventually(function() return v:state() == "down" end, 5, "port down")
    assert.equal(1, v:stats().hangups)
  end)
end)
