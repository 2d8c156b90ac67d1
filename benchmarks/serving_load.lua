-- wrk script for benchmarks/serving_load.py: POST JSON bodies, one per line of a file, in turn.
--
-- Usage: wrk -c N -d 10s --latency -s serving_load.lua URL -- BODIES_FILE
-- Each connection cycles through the bodies (requests are built once, in init). Every response
-- outside 2xx is counted; done() prints one line "RESULT {json}" that serving_load.py reads.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local path = wrk.path
   local headers = { ["Content-Type"] = "application/json" }
   requests = {}
   for line in io.lines(args[1]) do
      if #line > 0 then
         table.insert(requests, wrk.format("POST", path, headers, line))
      end
   end
   if #requests == 0 then
      error("no request bodies in " .. args[1])
   end
   next_request = 0
   non_2xx = 0
end

function request()
   next_request = next_request % #requests + 1
   return requests[next_request]
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      non_2xx = non_2xx + 1
   end
end

function done(summary, latency, requests)
   local non_2xx_total = 0
   for _, thread in ipairs(threads) do
      non_2xx_total = non_2xx_total + thread:get("non_2xx")
   end
   local errors = summary.errors
   io.write(string.format(
      'RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
         .. '"max_us": %d, "non_2xx": %d, "connect_errors": %d, "read_errors": %d, '
         .. '"write_errors": %d, "timeouts": %d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, non_2xx_total, errors.connect, errors.read,
      errors.write, errors.timeout))
end
