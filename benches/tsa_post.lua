-- wrk: POST the timestamp request in $TSA_QUERY (DER) over keep-alive connections.
local f = assert(io.open(os.getenv("TSA_QUERY"), "rb"))
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/timestamp-query"
