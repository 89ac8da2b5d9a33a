-- spec/tmux_pane.lua — a terminal for the specs to type into: a program run in a pane of a
-- private tmux server (one per terminal, its socket in the spec's directory), keys sent with send-keys, the
-- screen read with capture-pane, waits with deadlines. close() kills the program (by its
-- pid) and the server, whatever state the spec left them in.

local luaswitch = require "luaswitch"

local T = {}
T.__index = T

local count = 0

local function sh(cmd)
  local p = io.popen(cmd .. " 2>/dev/null")
  local out = p:read("a")
  p:close()
  return out
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

--- Start `cmd` (a shell command line) in a fresh tmux server, in a 160x50 terminal.
-- `dir` holds the server's config and the program's exit status (written by the shell
-- that runs it: tmux's own view of a dead pane can lag behind).
function T.start(cmd, dir)
  count = count + 1
  local self = setmetatable({}, T)
  self.socket = dir .. "/tmux" .. count .. ".sock" -- in dir: removed with it
  self.conf = dir .. "/tmux" .. count .. ".conf"
  self.rc = dir .. "/tmux" .. count .. ".rc"
  os.remove(self.rc)
  local f = assert(io.open(self.conf, "w"))
  f:write("set -g remain-on-exit on\nset -g history-limit 5000\nset -g status off\n")
  f:close()
  self.tmux = ("tmux -S %s -f %s"):format(q(self.socket), q(self.conf))
  -- the shell shares the terminal's Ctrl-C: `trap :` keeps it alive to write the status
  local wrapped = ("exec sh -c %s"):format(q(("trap : INT; %s; echo $? > %s"):format(cmd, q(self.rc))))
  local ok = os.execute(("%s new-session -d -x 160 -y 50 %s"):format(self.tmux, q(wrapped)))
  assert(ok, "tmux could not start " .. cmd)
  self.shell = tonumber(sh(self.tmux .. " display-message -p '#{pane_pid}'"):match("%d+"))
  -- the program: the shell's child
  local deadline = luaswitch.monotime() + 5
  repeat
    self.pid = tonumber(sh("ps -o pid= --ppid " .. tostring(self.shell)):match("%d+"))
    if not self.pid then os.execute("sleep 0.01") end
  until self.pid or luaswitch.monotime() > deadline or self:status()
  return self
end

--- Type text as it is (no key names).
function T:type(text)
  os.execute(("%s send-keys -l -- %s"):format(self.tmux, q(text)))
end

--- Press keys by name: "Enter", "Tab", "C-c", "C-d".
function T:key(...)
  for _, k in ipairs({ ... }) do os.execute(("%s send-keys %s"):format(self.tmux, k)) end
end

--- Type a line and press Enter.
function T:line(text)
  self:type(text)
  self:key("Enter")
end

--- The screen and its scrollback, wrapped lines joined, trailing blank lines dropped.
function T:screen()
  return (sh(self.tmux .. " capture-pane -p -J -S -5000"):gsub("\n+$", "\n"))
end

--- Wait until the screen contains `text` (plain) `n` times (default 1); fail after
-- `timeout` seconds with the screen in the message.
function T:wait_for(text, timeout, n)
  local deadline = luaswitch.monotime() + (timeout or 10)
  n = n or 1
  while true do
    local s = self:screen()
    local found, pos = 0, 1
    while true do
      local i, j = s:find(text, pos, true)
      if not i then break end
      found, pos = found + 1, j + 1
    end
    if found >= n then return s end
    if luaswitch.monotime() > deadline then
      error(("timed out waiting for %q (%d times) on the screen:\n%s"):format(text, n, s), 2)
    end
    os.execute("sleep 0.05")
  end
end

--- Wait until the last line on the screen (the cursor's, usually) is `text`.
function T:wait_line(text, timeout)
  local deadline = luaswitch.monotime() + (timeout or 10)
  while true do
    local s = self:screen()
    local last = s:match("([^\n]*)\n$") or s
    if last:gsub("%s+$", "") == text:gsub("%s+$", "") then return s end
    if luaswitch.monotime() > deadline then
      error(("timed out waiting for the last line to be %q; screen:\n%s"):format(text, s), 2)
    end
    os.execute("sleep 0.05")
  end
end

--- Exit status once the program has exited, or nil.
function T:status()
  local f = io.open(self.rc)
  if not f then return nil end
  local st = tonumber(f:read("a"):match("%d+"))
  f:close()
  return st
end

--- Wait for the program to exit; returns its status.
function T:wait_exit(timeout)
  local deadline = luaswitch.monotime() + (timeout or 10)
  while true do
    local st = self:status()
    if st then return st end
    if luaswitch.monotime() > deadline then
      error(("timed out waiting for the program to exit; process:\n%s\nscreen:\n%s"):format(
        sh("ps -o pid,ppid,stat,wchan:32,cmd -p " .. tostring(self.pid)),
        self:screen()), 2)
    end
    os.execute("sleep 0.05")
  end
end

--- Is the program still running?
function T:alive()
  return self.pid ~= nil and self:status() == nil and
    os.execute("kill -0 " .. self.pid .. " 2>/dev/null") == true
end

--- Kill the program (if it still runs) and the tmux server (and the shell with it).
function T:close()
  if self.pid and self:status() == nil then os.execute("kill -KILL " .. self.pid .. " 2>/dev/null") end
  os.execute(self.tmux .. " kill-server 2>/dev/null")
end

return T
