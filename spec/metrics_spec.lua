-- `luaswitch --metrics ADDR`: Prometheus text exposition over HTTP, on a TCP port or a
-- unix socket, read back with curl and parsed with the official Python client's parser;
-- the counters follow the traffic; other paths and methods are refused; the socket file
-- goes away at exit.

local S = require "support"

local BIN = os.getenv("LUASWITCH_BIN") or "build/luaswitch"
local SRC = os.getenv("LUASWITCH_SOURCE") or "."

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function run(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"::rc=$?\"")
  local out = p:read("a")
  p:close()
  local rc = tonumber(out:match("::rc=(%d+)%s*$"))
  return out:gsub("::rc=%d+%s*$", ""), rc
end

-- Parse exposition text with prometheus_client; prints "name{labels} value" per sample.
local PARSE = [[/usr/bin/python3 -c 'import sys
from prometheus_client.parser import text_string_to_metric_families
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        print(fam.type, s.name, ",".join("%s=%s" % kv for kv in sorted(s.labels.items())), s.value)']]

describe("luaswitch --metrics", function()
  local dir, srv

  local function start(addr)
    srv = { out = dir .. "/server.out", rc = dir .. "/server.rc" }
    local p = io.popen(("sh -c %s >/dev/null 2>&1 & echo $!"):format(q(("%s --metrics %s %s >%s 2>&1; echo $? >%s")
      :format(BIN, q(addr), q(SRC .. "/examples/lab.lua"), q(srv.out), q(srv.rc)))))
    srv.shell = tonumber(p:read("l"))
    p:close()
    S.eventually(function()
      local c = io.popen("ps -o pid= --ppid " .. srv.shell)
      srv.pid = tonumber(c:read("a"):match("%d+"))
      c:close()
      return srv.pid and (S.read_file(srv.out) or ""):match("metrics at (%S+)")
    end, 10, "the metrics address on stderr")
    return (S.read_file(srv.out):match("metrics at (%S+)"))
  end

  local function stop()
    os.execute("kill -TERM " .. srv.pid)
    S.eventually(function() return S.read_file(srv.rc) end, 10, "the server to exit")
    return tonumber(S.read_file(srv.rc):match("%d+"))
  end

  before_each(function()
    dir = S.tmpdir()
    srv = nil
  end)

  after_each(function()
    if srv then
      if srv.pid then os.execute("kill -KILL " .. srv.pid .. " 2>/dev/null") end
      os.execute("kill -KILL " .. srv.shell .. " 2>/dev/null")
    end
    S.cleanup()
  end)

  it("serves every switch's and port's counters on a TCP port, in a format Prometheus parses", function()
    if not S.have("curl") or os.execute("/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null") ~= true then
      return pending("needs curl and python3-prometheus-client")
    end
    local url = start("127.0.0.1:0")
    assert.matches("^http://127%.0%.0%.1:%d+/metrics$", url)
    local out, rc = run("curl -sS -i " .. q(url))
    assert.equal(0, rc, out)
    assert.matches("^HTTP/1%.1 200 OK\r\nContent%-Type: text/plain; version=0%.0%.4; charset=utf%-8\r\n", out)

    local function sample(text, pattern)
      return tonumber(text:match(pattern))
    end
    out, rc = run("curl -sS " .. q(url) .. " | " .. PARSE)
    assert.equal(0, rc, out)
    local rx1 = sample(out, "\ncounter luaswitch_port_rx_frames_total port=alice,switch=lab ([%d.]+)\n")
    assert.truthy(rx1, out)
    assert.matches("\ngauge luaswitch_port_up port=bob,switch=lab 1%.0\n", out)
    assert.matches("\ngauge luaswitch_fdb_entries switch=lab 3%.0\n", out)
    assert.matches("\ncounter luaswitch_fdb_learned_total switch=lab 3%.0\n", out)
    assert.matches("\ncounter luaswitch_port_drops_total port=carol,reason=tx_full,switch=lab 0%.0\n", out)
    assert.matches("\ncounter luaswitch_runtime_events_lost_total  0%.0\n", out)
    assert.matches("\ncounter luaswitch_lua_dispatched_total  3%.0\n", out)
    -- the background traffic moves the counters
    S.eventually(function()
      local o = run("curl -sS " .. q(url) .. " | " .. PARSE)
      local rx2 = sample(o, "\ncounter luaswitch_port_rx_frames_total port=alice,switch=lab ([%d.]+)\n")
      return rx2 and rx2 > rx1
    end, 10, "alice's rx_frames to grow")

    assert.equal("404", (run("curl -s -o /dev/null -w '%{http_code}' " .. q(url:gsub("/metrics$", "/")))))
    assert.equal("405", (run("curl -s -o /dev/null -w '%{http_code}' -X POST " .. q(url))))
    assert.equal(0, stop())
  end)

  it("serves them on a unix socket too, removed at exit", function()
    if not S.have("curl") then return pending("needs curl") end
    local path = dir .. "/metrics.sock"
    assert.equal("unix:" .. path, start(path))
    assert.equal("600\n", (run("stat -c %a " .. q(path))))
    local out, rc = run("curl -sS --unix-socket " .. q(path) .. " http://lab/metrics")
    assert.equal(0, rc, out)
    assert.matches('\nluaswitch_fdb_entries{switch="lab"} 3\n', out)
    assert.equal(0, stop())
    assert.is_not_true(os.execute("test -e " .. q(path)))
  end)
end)
