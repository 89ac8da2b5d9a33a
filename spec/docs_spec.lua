-- The documentation stays true: README.md and docs/*.md link only to files and headings
-- that exist; the Lua examples marked runnable run; every public function of the Lua
-- modules has an LDoc comment; and the LDoc API reference (config.ld) builds cleanly.
--
-- A fenced ```lua block is runnable when the line before its fence is exactly
-- `<!-- runs -->`. Mark only blocks that run as they are, without root or network (pure
-- API examples on switches, ports, endpoints, frames and the harness): each is written to a
-- file and run with the luaswitch executable (LUASWITCH_BIN) in a child process, followed
-- by `luaswitch.stop()` so that switches it left open do not keep the executable serving.
-- The block sees the global `luaswitch`, as in the REPL; everything else it must require.

local ROOT = os.getenv("LUASWITCH_SOURCE") or "."
local BIN = os.getenv("LUASWITCH_BIN") or "build/luaswitch"

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  -- a directory: io.open succeeds on Linux for reading directories, but be explicit
  return os.execute(("test -e %q"):format(path)) == true
end

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, how, code = p:close()
  return ok, out, code, how
end

local function lines(s)
  local t = {}
  for l in (s .. "\n"):gmatch("(.-)\r?\n") do t[#t + 1] = l end
  if t[#t] == "" then t[#t] = nil end
  return t
end

-- The documents: README.md and every docs/*.md (relative paths from ROOT).
local function documents()
  local docs = { "README.md" }
  local p = assert(io.popen(("ls -1 %q/docs"):format(ROOT)))
  for name in p:lines() do
    if name:match("%.md$") then docs[#docs + 1] = "docs/" .. name end
  end
  p:close()
  return docs
end

-- GitHub's heading anchors: lower case, punctuation but '-' and '_' removed, spaces to '-',
-- a repeated anchor suffixed -1, -2, ...
local function slug(text)
  text = text:gsub("%[([^%]]*)%]%b()", "%1") -- a link in a heading counts by its text
  text = text:lower():gsub("[^%w%s_%-]", ""):gsub("%s", "-")
  return text
end

-- Headings' anchors, links (with their line numbers) and runnable blocks of one document.
local function parse(text)
  local anchors, links, blocks, seen = {}, {}, {}, {}
  local fence, block, prev = nil, nil, nil
  for n, l in ipairs(lines(text)) do
    local f = l:match("^%s*(```+)")
    if fence then
      if f and #f >= #fence and l:match("^%s*```+%s*$") then
        fence = nil
        if block then blocks[#blocks + 1] = block; block = nil end
      elseif block then
        block.code[#block.code + 1] = l
      end
    elseif f then
      fence = f
      if l:match("^%s*```+%s*lua%s*$") and prev and prev:match("^%s*<!%-%- runs %-%->%s*$") then
        block = { line = n, code = {} }
      end
    else
      local h = l:match("^#+%s+(.-)%s*#*%s*$")
      if h then
        local s = slug(h)
        if seen[s] then
          seen[s] = seen[s] + 1
          s = s .. "-" .. seen[s]
        else
          seen[s] = 0
        end
        anchors[s] = true
      end
      -- links outside inline code spans
      local plain = l:gsub("`[^`]*`", "")
      for target in plain:gmatch("%]%(([^)%s]+)[^)]*%)") do
        links[#links + 1] = { target = target, line = n }
      end
    end
    prev = l
  end
  return anchors, links, blocks
end

local function dirname(path) return path:match("^(.*)/[^/]*$") or "." end

local function normalize(path)
  local parts = {}
  for part in path:gmatch("[^/]+") do
    if part == ".." and #parts > 0 and parts[#parts] ~= ".." then
      parts[#parts] = nil
    elseif part ~= "." then
      parts[#parts + 1] = part
    end
  end
  return table.concat(parts, "/")
end

describe("the documentation", function()
  local docs = documents()
  local parsed = {}
  for _, d in ipairs(docs) do
    local text = assert(read(ROOT .. "/" .. d), "cannot read " .. d)
    local anchors, links, blocks = parse(text)
    parsed[d] = { anchors = anchors, links = links, blocks = blocks }
  end

  it("has a README of at most 250 lines that links to every guide", function()
    local readme = read(ROOT .. "/README.md")
    assert.is_true(#lines(readme) <= 250, "README.md has " .. #lines(readme) .. " lines")
    local missing = {}
    for _, d in ipairs(docs) do
      if d ~= "README.md" and not readme:find("(" .. d, 1, true) then missing[#missing + 1] = d end
    end
    assert.same({}, missing)
  end)

  it("links only to files and headings that exist", function()
    local broken = {}
    for _, d in ipairs(docs) do
      for _, link in ipairs(parsed[d].links) do
        local t = link.target
        if not t:match("^%a[%w+.-]*:") then -- not http:, https:, mailto:
          local path, anchor = t:match("^([^#]*)#?(.*)$")
          local target = path == "" and d or normalize(dirname(d) .. "/" .. path)
          local where = ("%s:%d: %s"):format(d, link.line, t)
          if not exists(ROOT .. "/" .. target) then
            broken[#broken + 1] = where .. " (no such file)"
          elseif anchor ~= "" then
            local p = parsed[target]
            if not p and target:match("%.md$") then
              p = { anchors = (parse(read(ROOT .. "/" .. target) or "")) }
            end
            if p and not p.anchors[anchor] then
              broken[#broken + 1] = where .. " (no such heading)"
            end
          end
        end
      end
    end
    assert.same({}, broken)
  end)

  it("has runnable Lua examples that run", function()
    local count, failed = 0, {}
    local _, out = sh("mktemp -d")
    local dir = out:gsub("%s+$", "")
    for _, d in ipairs(docs) do
      for _, b in ipairs(parsed[d].blocks) do
        count = count + 1
        local file = ("%s/block%d.lua"):format(dir, count)
        local f = assert(io.open(file, "w"))
        f:write(table.concat(b.code, "\n"), "\n")
        f:close()
        local runner = ("%s/run%d.lua"):format(dir, count)
        f = assert(io.open(runner, "w"))
        f:write(("luaswitch = require 'luaswitch'\ndofile(%q)\nluaswitch.stop()\n"):format(file))
        f:close()
        local ok, output = sh(("cd %q && timeout 60 %q %q"):format(ROOT, BIN, runner))
        if not ok then
          failed[#failed + 1] = ("%s:%d: the block failed:\n%s"):format(d, b.line, output)
        end
      end
    end
    os.execute(("rm -rf %q"):format(dir))
    assert.is_true(count > 0, "no block is marked <!-- runs -->")
    assert.same({}, failed)
  end)
end)

-- Public functions of the Lua modules: `function X.name` / `function X:name` and
-- `X.name = function` at the start of a line, X the module table M or a class or method
-- table; names starting with '_' are private. Each needs a comment block right above it
-- (no blank line between) whose first line starts with `---`.
local MODULES = { "init", "lab", "netns", "test", "frame", "console", "json" }

local function undocumented(path, shown)
  local missing = {}
  local ls = lines(assert(read(path)))
  for n, l in ipairs(ls) do
    local name = l:match("^function%s+([%w_]+[.:][%w_]+)%s*%(")
      or l:match("^([%w_]+%.[%w_]+)%s*=%s*function%s*%(")
    if name and not name:match("[.:]_") then
      local i = n - 1
      while i >= 1 and ls[i]:match("^%s*%-%-") do i = i - 1 end
      local first = ls[i + 1]
      if i == n - 1 or not first:match("^%s*%-%-%-") then
        missing[#missing + 1] = ("%s:%d: %s"):format(shown, n, name)
      end
    end
  end
  return missing
end

describe("the Lua API reference", function()
  it("has a doc comment on every public function", function()
    local missing = {}
    for _, m in ipairs(MODULES) do
      local shown = "lua/luaswitch/" .. m .. ".lua"
      for _, entry in ipairs(undocumented(ROOT .. "/" .. shown, shown)) do missing[#missing + 1] = entry end
    end
    if #missing > 0 then
      error(("%d public function(s) without a --- doc comment:\n  %s"):format(#missing,
        table.concat(missing, "\n  ")), 0)
    end
  end)

  -- Debian's ldoc script asks lua-any for Lua 5.1 or 5.2; its modules are installed for
  -- 5.4 as well, so run it with lua5.4.
  local ldoc_path = (select(2, sh("command -v ldoc")) or ""):gsub("%s+$", "")
  local test = ldoc_path ~= "" and it or pending
  test("builds with LDoc, every reference resolved", function()
    local _, out = sh("mktemp -d")
    local dir = out:gsub("%s+$", "")
    local ok, output = sh(("cd %q && lua5.4 %q -c config.ld -d %q ."):format(ROOT, ldoc_path, dir))
    local index = read(dir .. "/index.html")
    os.execute(("rm -rf %q"):format(dir))
    assert(ok, "ldoc failed:\n" .. output)
    assert(index, "ldoc wrote no index.html:\n" .. output)
    -- Broken references (@{name}, @see) fail; LDoc's other warnings (a @param named
    -- differently from the formal argument) are printed for whoever fixes the comment.
    local broken, other = {}, {}
    for _, l in ipairs(lines(output)) do
      if l:match("reference") or (l:match("not found") and not l:match("^format:")) then
        broken[#broken + 1] = l
      elseif l:match("^[^%s]+:%d+:") then
        other[#other + 1] = l
      end
    end
    if #other > 0 then
      io.stderr:write("ldoc warnings (not failing):\n  ", table.concat(other, "\n  "), "\n")
    end
    assert.same({}, broken)
  end)
end)
