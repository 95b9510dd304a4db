-- wrk script for bench/soak: a mix of good and bad requests against `modelport serve`
-- running the mlp example (64 float inputs), counted by status.
--
-- Per 100 requests: 60 one-row predictions, 20 of 64 rows, 4 of 512 rows (a large
-- batch, about 330 KB), 5 Open Inference Protocol v2 requests, 4 bodies that are not
-- JSON, 4 rows of the wrong width (400), 1 body over the 6 MB limit (413), 1 to a
-- route that does not exist (404), 1 empty instances list (400).

local function row(i)
  local v = {}
  for j = 1, 64 do
    v[j] = string.format("%.3f", ((i * 31 + j * 17) % 97) / 97)
  end
  return "[" .. table.concat(v, ",") .. "]"
end

local function rows(n)
  local r = {}
  for i = 1, n do r[i] = row(i) end
  return '{"instances": [' .. table.concat(r, ",") .. ']}'
end

local one = rows(1)
local batch = rows(64)
local large = rows(512)
local narrow = '{"instances": [[0.5, 0.25, 0.125]]}'
local oip = '{"inputs": [{"name": "X", "shape": [1, 64], "datatype": "FP32", "data": ' .. row(7) .. '}]}'
local garbage = '{"instances": [[0.1, 0.2,'
local empty = '{"instances": []}'
-- Over serve's 6 MB body limit.
local huge = '{"instances": [' .. string.rep(row(3) .. ",", 20000) .. row(3) .. ']}'

local plan = {}
local function add(n, path, body)
  for _ = 1, n do plan[#plan + 1] = {path, body} end
end
add(60, "/invocations", one)
add(20, "/invocations", batch)
add(4, "/invocations", large)
add(5, "/v2/models/model/infer", oip)
add(4, "/invocations", garbage)
add(4, "/invocations", narrow)
add(1, "/invocations", huge)
add(1, "/no-such-route", one)
add(1, "/invocations", empty)

local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
  n = tonumber(id) * 37
end

function request()
  n = n + 1
  local p = plan[(n % #plan) + 1]
  return wrk.format("POST", p[1], {["Content-Type"] = "application/json"}, p[2])
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    for status, c in pairs(t:get("counts")) do
      all[status] = (all[status] or 0) + c
    end
  end
  local parts = {}
  for status, c in pairs(all) do
    parts[#parts + 1] = string.format('"%d": %d', status, c)
  end
  local e = summary.errors
  io.write(string.format(
    'SOAK {"requests": %d, "duration_us": %d, "statuses": {%s}, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}}\n',
    summary.requests, summary.duration, table.concat(parts, ", "),
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.timeout))
end
