-- wrk script for bench/run: 64 iris examples per request, for the serving-overhead row.
local rows = {}
for i = 1, 64 do
  rows[i] = string.format("[%.1f, %.1f, %.1f, %.1f]", 4.5 + (i % 30) / 10, 2.5 + (i % 10) / 10, 1 + (i % 50) / 10, 0.1 + (i % 20) / 10)
end
wrk.method = "POST"
wrk.body = '{"instances": [' .. table.concat(rows, ", ") .. ']}'
wrk.headers["Content-Type"] = "application/json"
