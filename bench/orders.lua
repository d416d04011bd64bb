-- wrk script shared by bench/bench_orders.py and bench/run_bench.py: POST /api/v1/orders, every order
-- unique (client_order_id from run, thread and counter); counts APPROVED, REJECTED and non-200 answers,
-- and writes the latency histogram to BENCH_LATENCY_FILE (the percentiles are computed by the harness).
-- Every request a unique order: thread id + counter in client_order_id, 50 symbols, varying quantity.
-- Books (a server that has them): BENCH_TOKENS holds several traders' tokens and BENCH_BOOKS, for each token
-- in the same order, the books that trader may trade ("B1,B2|B3,B4"); request n is sent by trader n mod the
-- number of traders, in the next of its books. Without BENCH_BOOKS the body has no "book": the
-- user's default book, and the only body a server from before books knows.
local counter = 0
local threads = {}
local token = os.getenv("BENCH_TOKEN") or ""
local run = os.getenv("BENCH_RUN") or "r"

local function split(text, sep)
  local parts = {}
  for part in string.gmatch(text or "", "[^" .. sep .. "]+") do table.insert(parts, part) end
  return parts
end

local tokens = split(os.getenv("BENCH_TOKENS"), " ")
local books = {}
for i, group in ipairs(split(os.getenv("BENCH_BOOKS"), "|")) do books[i] = split(group, ",") end
if #tokens == 0 then tokens = {token} end

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

local headers = {}

function init(args)
  approved, rejected, other = 0, 0, 0
  wrk.method = "POST"
  -- one header table per trader: wrk.format uses the table given in place of wrk.headers
  for i, t in ipairs(tokens) do
    headers[i] = {["Content-Type"] = "application/json"}
    if t ~= "" then headers[i]["Authorization"] = "Bearer " .. t end
  end
end

function request()
  counter = counter + 1
  local who = counter % #tokens + 1
  local book = ""
  local mine = books[who]
  if mine and #mine > 0 then
    book = string.format(',"book":"%s"', mine[math.floor(counter / #tokens) % #mine + 1])
  end
  -- Limit prices either side of the bench market (the feed walks around 100 within about 0.5 %): buys at 101
  -- and sells at 99 are marketable, so they fill rather than rest at the simulated venue.
  local sell = counter % 3 == 0
  local body = string.format(
    '{"symbol":"SYM%d","side":"%s","quantity":%d,"price":%s,"client_order_id":"%s-%d-%d"%s}',
    counter % 50, sell and "SELL" or "BUY", 1 + counter % 97, sell and "99.00" or "101.00", run, id, counter, book)
  -- wrk.format sets Host and Content-Length in the table it is given, afresh on every call
  return wrk.format(nil, nil, headers[who], body)
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
