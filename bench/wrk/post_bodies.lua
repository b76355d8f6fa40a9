-- wrk script: POST JSON bodies taken in turn from a file of one body per line (bench/serving_kit.py writes it).
--   wrk -s bench/wrk/post_bodies.lua URL -- BODIES_FILE [PACE_MS]
-- Without PACE_MS each connection sends its next request as soon as the last is answered (capacity). With it, each
-- connection waits PACE_MS on average (uniformly 0.5x to 1.5x, so connections do not move in step) before each
-- request: C connections then offer about C * 1000 / PACE_MS requests/s whatever the service does, as long as
-- answers take much less than PACE_MS (the kit checks the rate reached).
-- Prints one "status <code> <count>" line per HTTP status at the end.
local bodies = {}
local counter = 0
local pace = 0
local threads = {}
statuses = {}

function setup(thread)
    threads[#threads + 1] = thread
end

function init(args)
    local path = args[1] or error("usage: wrk -s post_bodies.lua URL -- BODIES_FILE [PACE_MS]")
    for line in io.lines(path) do
        if #line > 0 then bodies[#bodies + 1] = line end
    end
    if #bodies == 0 then error("no bodies in " .. path) end
    pace = tonumber(args[2] or "0")
    math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
    counter = math.random(#bodies)
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
end

function delay()
    if pace <= 0 then return 0 end
    return pace * (0.5 + math.random())
end

function request()
    counter = counter % #bodies + 1
    return wrk.format(nil, nil, nil, bodies[counter])
end

function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
    local total = {}
    for _, thread in ipairs(threads) do
        for status, n in pairs(thread:get("statuses")) do
            total[status] = (total[status] or 0) + n
        end
    end
    for status, n in pairs(total) do
        io.write(string.format("status %d %d\n", status, n))
    end
end
