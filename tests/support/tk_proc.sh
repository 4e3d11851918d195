# tk_proc.sh — process checks the shell test drivers share (source it; bash only).
#
# Why tk_alive forks nothing: the drivers' old check, `[[ -r /proc/$pid/stat ]]` and then
# `$(sed ... /proc/$pid/stat)`, raced with bash itself. bash reaps an exited child while it runs
# other commands, so a daemon that had just exited could be a zombie at the -r test and gone
# when sed opened the file; sed printed nothing, "nothing" is not "Z", and the check called the
# daemon alive. A daemon that had stopped cleanly on SIGTERM was then reported "still running"
# (and killed: "No such process"). TSan daemons, slower to exit, hit the window most (CI: the
# seatcored suite against a TSan build; the edge suite against TSan services, 1 run in 3).
# Here the state is read once, by a builtin: no file, or state Z, is not alive.

# tk_now_ms: milliseconds of the wall clock, without a fork
tk_now_ms() {
    local t="${EPOCHREALTIME//[.,]/}" # seconds and microseconds as one integer (the locale's radix)
    echo $((t / 1000))
}

# tk_alive PID: the process exists and is not a zombie (a dead child not yet reaped)
tk_alive() {
    local stat
    [[ -n "$1" ]] || return 1
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    stat="${stat##*) }" # the state follows the command name, which may hold spaces or ')'
    [[ -n "$stat" && "${stat%% *}" != Z ]]
}

# tk_stop PID GRACE_MS: SIGTERM, then wait up to GRACE_MS + 5 s (by the clock, not by a count of
# polls) for the process to end. Sets TK_STOP_MS (how long it took) and TK_STOP_RC (its exit
# status; PID must be a child of this shell). Returns 0 if it ended in time, 1 if it overstayed
# and was killed (SIGKILL), 2 if it was not running when asked (TK_STOP_RC: how it ended).
tk_stop() {
    local pid="$1" limit=$(($2 + 5000)) t0
    TK_STOP_MS=0 TK_STOP_RC=0
    if ! tk_alive "$pid"; then
        wait "$pid" 2>/dev/null
        TK_STOP_RC=$?
        return 2
    fi
    t0="$(tk_now_ms)"
    kill -TERM "$pid" 2>/dev/null
    while tk_alive "$pid" && (($(tk_now_ms) - t0 < limit)); do sleep 0.05; done
    TK_STOP_MS=$(($(tk_now_ms) - t0))
    if tk_alive "$pid"; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        return 1
    fi
    wait "$pid" 2>/dev/null
    TK_STOP_RC=$?
    return 0
}

# tk_stop_checked NAME PID GRACE_MS: the end of a suite for a daemon it shared between tests: it
# must still be running, and must exit 0 on SIGTERM within GRACE_MS + 5 s. Reports through the
# caller's check_ok / check_fail.
tk_stop_checked() {
    local name="$1" pid="$2" grace_ms="$3" rc=0
    tk_stop "$pid" "$grace_ms" || rc=$?
    case "$rc" in
    2) check_fail "$name still running after the tests (it died: exit status $TK_STOP_RC)" ;;
    1) check_fail "$name exits on SIGTERM (still running after $(((grace_ms + 5000) / 1000)) s, killed)" ;;
    *) if ((TK_STOP_RC == 0)); then
           check_ok "$name ran through the tests and exits 0 on SIGTERM ($TK_STOP_MS ms)"
       else
           check_fail "$name exits 0 on SIGTERM (exit status $TK_STOP_RC)"
       fi ;;
    esac
}
