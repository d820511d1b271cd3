-- POSTs the call-transfer `transferAccepted` notification (the testkit's fixtures) with a
-- bearer token, round-robin over the calls the server set up.
-- Script arguments: <setup file: token, then one call id a line> <notification body file>
local requests = {}
local next_index = 0

function init(args)
  local setup, template_path = args[1], args[2]
  local f = assert(io.open(template_path, "rb"))
  local template = f:read("*a")
  f:close()
  local token = nil
  for line in io.lines(setup) do
    if token == nil then
      token = line
    elseif line ~= "" then
      local body = template:gsub("341a0500%-d4bf%-4224%-8b19%-1581168d328b", line)
      requests[#requests + 1] = wrk.format("POST", "/api/calls", {
        ["Content-Type"] = "application/json",
        ["Authorization"] = "Bearer " .. token,
        ["Content-Length"] = tostring(#body),
      }, body)
    end
  end
  -- Threads start at different offsets so they do not hit the same calls in step.
  next_index = math.random(#requests) - 1
end

function request()
  next_index = next_index % #requests + 1
  return requests[next_index]
end
