-- wrk script: POST pre-signed deliveries from BODIES_FILE, each once per run.
-- The file holds PASSES x THREADS slices of SLICE lines: a thread of pass N (script argument, default 0)
-- loads only its own slice, so no two threads and no two passes send the same wamid (a duplicate would
-- take the cheaper "already stored" path). Past the end of its slice a thread starts over (duplicates).
dofile("bench/percentiles.lua")

local sigs, bodies = {}, {}
local counter = 0
local thread_id = 0

function setup(thread)
  thread:set("thread_index", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  local slice = tonumber(os.getenv("SLICE"))
  local threads = tonumber(os.getenv("THREADS"))
  local pass = tonumber(args[1]) or 0
  local first = (pass * threads + thread_index) * slice
  local n = 0
  for line in io.lines(os.getenv("BODIES_FILE")) do
    if n >= first + slice then break end
    if n >= first then
      local tab = string.find(line, "\t")
      table.insert(sigs, string.sub(line, 1, tab - 1))
      table.insert(bodies, string.sub(line, tab + 1))
    end
    n = n + 1
  end
end

function request()
  local i = (counter % #bodies) + 1
  counter = counter + 1
  return wrk.format("POST", "/webhooks/whatsapp/", {
    ["Content-Type"] = "application/json",
    ["X-Hub-Signature-256"] = sigs[i],
  }, bodies[i])
end
