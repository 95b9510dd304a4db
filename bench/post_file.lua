-- wrk script for bench/run: POSTs the bytes of the file $WRK_BODY with Content-Type
-- $WRK_CONTENT_TYPE and, when set, Inference-Header-Content-Length $WRK_JSON_LENGTH
-- (the Open Inference Protocol's binary tensor data extension).
local f = assert(io.open(os.getenv("WRK_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = os.getenv("WRK_CONTENT_TYPE")
local json_length = os.getenv("WRK_JSON_LENGTH")
if json_length ~= nil and json_length ~= "" then
  wrk.headers["Inference-Header-Content-Length"] = json_length
end
