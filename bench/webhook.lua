-- wrk script: POST pre-signed deliveries from BODIES_FILE, each once per thread slice.
local bodies = {}
local sigs = {}
local counter = 0

function init(args)
  local path = os.getenv("BODIES_FILE")
  for line in io.lines(path) do
    local tab = string.find(line, "\t")
    table.insert(sigs, string.sub(line, 1, tab - 1))
    table.insert(bodies, string.sub(line, tab + 1))
  end
  -- each wrk thread starts at a different offset so threads do not repeat each other's ids
  counter = (tonumber(args[1]) or 0)
end

local thread_id = 0
function setup(thread)
  thread:set("thread_offset", thread_id * 50000)
  thread_id = thread_id + 1
end

function request()
  counter = counter + 1
  local i = ((counter + (thread_offset or 0)) % #bodies) + 1
  return wrk.format("POST", "/webhooks/whatsapp/", {
    ["Content-Type"] = "application/json",
    ["X-Hub-Signature-256"] = sigs[i],
  }, bodies[i])
end
