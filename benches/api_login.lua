-- wrk: POST each login body prepared for this thread (FILE.N, one JSON body a line,
-- from `api-throughput prepare`) once, to /v1/login. Each challenge is good once: a body
-- posted again is refused (401) and counted by wrk as a non-2xx answer.
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
function init(args)
  bodies = {}
  for line in io.lines(args[1] .. "." .. id) do
    bodies[#bodies + 1] = line
  end
  i = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  i = i + 1
  if i > #bodies then
    i = 1
  end
  return wrk.format(nil, "/v1/login", nil, bodies[i])
end
