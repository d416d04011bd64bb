-- wrk script shared by bench/bench_orders.py and bench/run_bench.py: POST /api/v1/orders, every order
-- unique (client_order_id from run, thread and counter); counts APPROVED, REJECTED and non-200 answers,
-- and writes the latency histogram to BENCH_LATENCY_FILE (the percentiles are computed by the harness).
-- Every request a unique order: thread id + counter in client_order_id, 50 symbols, varying quantity.
local counter = 0
local threads = {}
local token = os.getenv("BENCH_TOKEN") or ""
local run = os.getenv("BENCH_RUN") or "r"

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  approved, rejected, other = 0, 0, 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"symbol":"SYM%d","side":"%s","quantity":%d,"price":100.25,"client_order_id":"%s-%d-%d"}',
    counter % 50, (counter % 3 == 0) and "SELL" or "BUY", 1 + counter % 97, run, id, counter)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status == 200 then
    if string.find(body, '"APPROVED"', 1, true) then approved = approved + 1 else rejected = rejected + 1 end
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local a, r, o = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("approved"); r = r + t:get("rejected"); o = o + t:get("other")
  end
  io.write(string.format("BENCH approved=%d rejected=%d other=%d\n", a, r, o))
  -- every distinct latency (µs) with its count, for the bench's own percentile function (bench/percentiles.py)
  local out = assert(io.open(assert(os.getenv("BENCH_LATENCY_FILE"), "set BENCH_LATENCY_FILE"), "w"))
  for i = 1, #latency do
    local value, count = latency(i)
    out:write(string.format("%d %d\n", value, count))
  end
  out:close()
  io.write(string.format("BENCH requests=%d duration_us=%d errors=%d\n",
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
