-- holds.lua — wrk script: POST /api/v1/events/{id}/holds, end to end, from many users.
--
--   wrk -t2 -c128 -d20s --latency -s holds.lua URL -- EVENT_ID USERS_FILE SEATS_FILE RUN_TAG THREADS
--
-- USERS_FILE: "<access token> <admission token>" per line (setup.py); SEATS_FILE: the
-- event's seat ids. Each request is one seat held by the next user with its own JWT and
-- admission token and a fresh Idempotency-Key. Thread t takes seats t, t+T, t+2T ...
-- and wraps around: with 100,000 seats and a hold TTL of a few seconds, a seat comes
-- round again after its hold expired (a 409 here means it had not: see the status counts).
-- Users are taken in turn too, starting at a different user per thread, so each user
-- holds at about rate/USERS per second (under the edge's per-user limit of 20/s).
-- done() prints "result KEY VALUE" lines that perf/edge-bench/run reads.

local threads = {}
local counter = 0

function setup(thread)
    thread:set("id", counter)
    counter = counter + 1
    table.insert(threads, thread)
end

local function read_lines(path)
    local lines = {}
    for line in io.lines(path) do
        if line ~= "" then lines[#lines + 1] = line end
    end
    assert(#lines > 0, path .. " is empty")
    return lines
end

function init(args)
    local event, users_file, seats_file = args[1], args[2], args[3]
    run_tag, thread_count = args[4], tonumber(args[5])
    assert(event and users_file and seats_file and run_tag and thread_count, "usage: see holds.lua")
    path = "/api/v1/events/" .. event .. "/holds"
    users = {}
    for _, line in ipairs(read_lines(users_file)) do
        local jwt, admission = line:match("^(%S+) (%S+)$")
        assert(jwt, "bad line in " .. users_file)
        users[#users + 1] = { "Bearer " .. jwt, admission }
    end
    seats = read_lines(seats_file)
    seat_next = id + 1                                    -- Lua arrays start at 1
    user_next = math.floor(id * #users / thread_count) + 1
    sent = 0
    codes = {}
end

function request()
    local seat = seats[seat_next]
    seat_next = seat_next + thread_count
    if seat_next > #seats then seat_next = seat_next - #seats end
    local user = users[user_next]
    user_next = user_next % #users + 1
    sent = sent + 1
    local headers = {
        ["Authorization"] = user[1],
        ["X-Admission-Token"] = user[2],
        ["Idempotency-Key"] = run_tag .. "-" .. id .. "-" .. sent,
        ["Content-Type"] = "application/json",
    }
    return wrk.format("POST", path, headers, '{"seat_ids":["' .. seat .. '"]}')
end

function response(status, headers, body)
    codes[status] = (codes[status] or 0) + 1
end

function done(summary, latency, requests)
    local totals = {}
    for _, thread in ipairs(threads) do
        for status, n in pairs(thread:get("codes")) do
            totals[status] = (totals[status] or 0) + n
        end
    end
    local seconds = summary.duration / 1e6
    local created = totals[201] or 0
    for status, n in pairs(totals) do
        io.write(string.format("result status_%d %d\n", status, n))
    end
    io.write(string.format("result seconds %.3f\n", seconds))
    io.write(string.format("result requests %d\n", summary.requests))
    io.write(string.format("result socket_errors %d\n", summary.errors.connect + summary.errors.read +
        summary.errors.write + summary.errors.timeout))
    io.write(string.format("result holds_per_s %.1f\n", created / seconds))
    for _, p in ipairs({ 50, 90, 99, 99.9 }) do
        io.write(string.format("result p%s_ms %.3f\n", tostring(p), latency:percentile(p) / 1000))
    end
    io.write(string.format("result max_ms %.3f\n", latency.max / 1000))
end
