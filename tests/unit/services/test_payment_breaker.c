/* test_payment_breaker.c — the gateway circuit breaker's state machine
 * (services/payment/payment_breaker.c): closed -> open at the failure threshold
 * over a full window, fail fast while open, one probe when half-open, the
 * probe's outcome closes or re-opens, stale outcomes are ignored, old outcomes
 * age out. Time is driven by hand. The source is compiled in directly: the
 * service is an executable, not a library. */
#include <criterion/criterion.h>
#include <pthread.h>

#include "../../../services/payment/payment_breaker.c"

static const struct payment_breaker_config production = {
    .window_calls = 10, .failure_percent = 50, .open_ms = 30000, .window_ms = 60000};

static void record(struct payment_breaker *b, int64_t now, bool failed)
{
    struct payment_breaker_ticket t = payment_breaker_acquire(b, now);
    cr_assert(t.allowed, "a call at %lld should have been allowed", (long long)now);
    payment_breaker_record(b, t, failed, now);
}

static void open_it(struct payment_breaker *b, int64_t now)
{
    for (int i = 0; i < 10; i++)
        record(b, now, true);
    cr_assert_eq(payment_breaker_state(b, now), PAYMENT_BREAKER_OPEN);
}

Test(payment_breaker, starts_closed_and_lets_calls_through)
{
    struct payment_breaker b;
    payment_breaker_init(&b, &production);
    cr_assert_eq(payment_breaker_state(&b, 0), PAYMENT_BREAKER_CLOSED);
    cr_assert_eq(payment_breaker_state_relaxed(&b), PAYMENT_BREAKER_CLOSED);
    for (int i = 0; i < 100; i++)
        record(&b, i, false);
    cr_assert_eq(payment_breaker_state(&b, 100), PAYMENT_BREAKER_CLOSED);
    payment_breaker_destroy(&b);
}

Test(payment_breaker, needs_a_full_window_before_it_judges)
{
    struct payment_breaker b;
    payment_breaker_init(&b, &production);
    for (int i = 0; i < 9; i++)
        record(&b, 1000, true); /* 9 of 9 failed, but fewer than 10 calls */
    cr_assert_eq(payment_breaker_state(&b, 1000), PAYMENT_BREAKER_CLOSED);
    record(&b, 1000, true); /* the 10th */
    cr_assert_eq(payment_breaker_state(&b, 1000), PAYMENT_BREAKER_OPEN);
    cr_assert_eq(payment_breaker_state_relaxed(&b), PAYMENT_BREAKER_OPEN);
    payment_breaker_destroy(&b);
}

Test(payment_breaker, opens_at_exactly_fifty_percent_not_below)
{
    struct payment_breaker b;
    payment_breaker_init(&b, &production);
    for (int i = 0; i < 10; i++)
        record(&b, 0, i >= 6); /* S S S S S S F F F F: 4 of 10 */
    cr_assert_eq(payment_breaker_state(&b, 0), PAYMENT_BREAKER_CLOSED);
    record(&b, 0, true); /* the oldest success slides out: 5 of 10 */
    cr_assert_eq(payment_breaker_state(&b, 0), PAYMENT_BREAKER_OPEN);
    payment_breaker_destroy(&b);
}

Test(payment_breaker, open_refuses_every_call_until_the_period_is_over)
{
    struct payment_breaker b;
    payment_breaker_init(&b, &production);
    open_it(&b, 5000);
    for (int64_t t = 5000; t < 5000 + 30000; t += 997) {
        cr_assert_not(payment_breaker_acquire(&b, t).allowed, "refused at %lld", (long long)t);
        cr_assert_not(payment_breaker_would_allow(&b, t));
    }
    cr_assert_eq(atomic_load(&b.refused), 31);
    cr_assert_eq(payment_breaker_state(&b, 5000 + 29999), PAYMENT_BREAKER_OPEN);
    cr_assert_eq(payment_breaker_state(&b, 5000 + 30000), PAYMENT_BREAKER_HALF_OPEN,
                 "after 30 s it reads half-open even before a call comes");
    payment_breaker_destroy(&b);
}

Test(payment_breaker, half_open_lets_exactly_one_probe_through)
{
    struct payment_breaker b;
    payment_breaker_init(&b, &production);
    open_it(&b, 0);
    cr_assert(payment_breaker_would_allow(&b, 30000));
    struct payment_breaker_ticket probe = payment_breaker_acquire(&b, 30000);
    cr_assert(probe.allowed && probe.probe);
    for (int i = 0; i < 5; i++)
        cr_assert_not(payment_breaker_acquire(&b, 30001 + i).allowed, "only one probe at a time");
    cr_assert_not(payment_breaker_would_allow(&b, 30010));
    cr_assert_eq(payment_breaker_state(&b, 30010), PAYMENT_BREAKER_HALF_OPEN);
    payment_breaker_destroy(&b);
}

Test(payment_breaker, a_successful_probe_closes_with_a_clean_window)
{
    struct payment_breaker b;
    payment_breaker_init(&b, &production);
    open_it(&b, 0);
    struct payment_breaker_ticket probe = payment_breaker_acquire(&b, 30000);
    payment_breaker_record(&b, probe, false, 30100);
    cr_assert_eq(payment_breaker_state(&b, 30100), PAYMENT_BREAKER_CLOSED);
    for (int i = 0; i < 9; i++)
        record(&b, 30200, true); /* the old failures are not held against it */
    cr_assert_eq(payment_breaker_state(&b, 30200), PAYMENT_BREAKER_CLOSED);
    cr_assert_eq(atomic_load(&b.transitions[PAYMENT_BREAKER_OPEN]), 1);
    cr_assert_eq(atomic_load(&b.transitions[PAYMENT_BREAKER_HALF_OPEN]), 1);
    cr_assert_eq(atomic_load(&b.transitions[PAYMENT_BREAKER_CLOSED]), 1);
    payment_breaker_destroy(&b);
}

Test(payment_breaker, a_failed_probe_opens_again_for_a_full_period)
{
    struct payment_breaker b;
    payment_breaker_init(&b, &production);
    open_it(&b, 0);
    struct payment_breaker_ticket probe = payment_breaker_acquire(&b, 30000);
    payment_breaker_record(&b, probe, true, 33000); /* the probe timed out after 3 s */
    cr_assert_eq(payment_breaker_state(&b, 33000), PAYMENT_BREAKER_OPEN);
    cr_assert_not(payment_breaker_acquire(&b, 62999).allowed, "open counts from the probe's failure");
    struct payment_breaker_ticket again = payment_breaker_acquire(&b, 63000);
    cr_assert(again.allowed && again.probe);
    payment_breaker_destroy(&b);
}

Test(payment_breaker, outcomes_of_an_older_generation_are_ignored)
{
    struct payment_breaker b;
    payment_breaker_init(&b, &production);
    struct payment_breaker_ticket slow = payment_breaker_acquire(&b, 0); /* started while closed */
    open_it(&b, 100);
    struct payment_breaker_ticket probe = payment_breaker_acquire(&b, 30100);
    payment_breaker_record(&b, slow, false, 30150); /* the slow call succeeds late: must not close it */
    cr_assert_eq(payment_breaker_state(&b, 30150), PAYMENT_BREAKER_HALF_OPEN);
    payment_breaker_record(&b, probe, false, 30200);
    cr_assert_eq(payment_breaker_state(&b, 30200), PAYMENT_BREAKER_CLOSED);
    payment_breaker_record(&b, probe, true, 30300); /* a duplicate report changes nothing */
    cr_assert_eq(payment_breaker_state(&b, 30300), PAYMENT_BREAKER_CLOSED);
    payment_breaker_destroy(&b);
}

Test(payment_breaker, a_silent_probe_is_replaced_after_the_probe_timeout)
{
    struct payment_breaker_config config = production;
    config.probe_timeout_ms = 5000;
    struct payment_breaker b;
    payment_breaker_init(&b, &config);
    open_it(&b, 0);
    struct payment_breaker_ticket lost = payment_breaker_acquire(&b, 30000);
    cr_assert(lost.probe);
    cr_assert_not(payment_breaker_acquire(&b, 34999).allowed);
    struct payment_breaker_ticket second = payment_breaker_acquire(&b, 35000);
    cr_assert(second.allowed && second.probe);
    payment_breaker_record(&b, lost, false, 35001); /* the lost probe's late success is stale */
    cr_assert_eq(payment_breaker_state(&b, 35001), PAYMENT_BREAKER_HALF_OPEN);
    payment_breaker_record(&b, second, false, 35002);
    cr_assert_eq(payment_breaker_state(&b, 35002), PAYMENT_BREAKER_CLOSED);
    payment_breaker_destroy(&b);
}

Test(payment_breaker, old_outcomes_age_out_of_the_window)
{
    struct payment_breaker b;
    payment_breaker_init(&b, &production);
    for (int i = 0; i < 9; i++)
        record(&b, 0, true);
    /* a minute later the nine failures no longer count: 1 recent call is not a full window */
    record(&b, 60001, true);
    cr_assert_eq(payment_breaker_state(&b, 60001), PAYMENT_BREAKER_CLOSED);
    for (int i = 0; i < 8; i++)
        record(&b, 60002, false);
    record(&b, 60003, true);
    cr_assert_eq(payment_breaker_state(&b, 60003), PAYMENT_BREAKER_CLOSED, "2 of 10 recent calls failed");
    payment_breaker_destroy(&b);
}

Test(payment_breaker, count_only_window_when_window_ms_is_zero)
{
    struct payment_breaker_config config = production;
    config.window_ms = 0;
    struct payment_breaker b;
    payment_breaker_init(&b, &config);
    for (int i = 0; i < 5; i++)
        record(&b, 0, true);
    for (int i = 0; i < 5; i++)
        record(&b, 86400000, false); /* a day later the failures still count */
    cr_assert_eq(payment_breaker_state(&b, 86400000), PAYMENT_BREAKER_OPEN);
    payment_breaker_destroy(&b);
}

Test(payment_breaker, shortened_settings_for_tests_work_the_same)
{
    struct payment_breaker_config config = {.window_calls = 4, .failure_percent = 75, .open_ms = 200};
    struct payment_breaker b;
    payment_breaker_init(&b, &config);
    record(&b, 0, true);
    record(&b, 0, false);
    record(&b, 0, true);
    record(&b, 0, false); /* 2 of 4 < 75 % */
    cr_assert_eq(payment_breaker_state(&b, 0), PAYMENT_BREAKER_CLOSED);
    record(&b, 1, true);
    record(&b, 1, true); /* 3 of 4 */
    cr_assert_eq(payment_breaker_state(&b, 1), PAYMENT_BREAKER_OPEN);
    cr_assert_eq(payment_breaker_state(&b, 201), PAYMENT_BREAKER_HALF_OPEN);
    payment_breaker_destroy(&b);
}

Test(payment_breaker, config_check_refuses_what_it_cannot_do)
{
    char why[128];
    struct payment_breaker_config c = production;
    cr_assert(payment_breaker_config_check(&c, why, sizeof(why)));
    c.window_calls = 1;
    cr_assert_not(payment_breaker_config_check(&c, why, sizeof(why)));
    c.window_calls = PAYMENT_BREAKER_WINDOW_CALLS_MAX + 1;
    cr_assert_not(payment_breaker_config_check(&c, why, sizeof(why)));
    c = production;
    c.failure_percent = 0;
    cr_assert_not(payment_breaker_config_check(&c, why, sizeof(why)));
    c.failure_percent = 101;
    cr_assert_not(payment_breaker_config_check(&c, why, sizeof(why)));
    c = production;
    c.open_ms = 0;
    cr_assert_not(payment_breaker_config_check(&c, why, sizeof(why)));
    cr_assert_str_eq(payment_breaker_state_name(PAYMENT_BREAKER_HALF_OPEN), "half_open");
}

Test(payment_breaker, one_failing_payment_cannot_hold_it_open_when_several_probes_are_judged)
{
    /* The case a single probe gets wrong: one customer's charge keeps failing and
     * is retried as soon as the breaker half-opens, while others' charges work. */
    struct payment_breaker_config config = production;
    config.probe_calls = 5;
    struct payment_breaker b;
    payment_breaker_init(&b, &config);
    open_it(&b, 0);
    struct payment_breaker_ticket failing = payment_breaker_acquire(&b, 30000);
    cr_assert(failing.allowed && failing.probe);
    payment_breaker_record(&b, failing, true, 30010);
    cr_assert_eq(payment_breaker_state(&b, 30010), PAYMENT_BREAKER_HALF_OPEN, "1 failure of 5 decides nothing");
    for (int i = 0; i < 2; i++) {
        struct payment_breaker_ticket good = payment_breaker_acquire(&b, 30020 + i);
        cr_assert(good.allowed && good.probe);
        payment_breaker_record(&b, good, false, 30030 + i);
        cr_assert_eq(payment_breaker_state(&b, 30030 + i), PAYMENT_BREAKER_HALF_OPEN);
    }
    struct payment_breaker_ticket third = payment_breaker_acquire(&b, 30040);
    payment_breaker_record(&b, third, false, 30050);
    cr_assert_eq(payment_breaker_state(&b, 30050), PAYMENT_BREAKER_CLOSED,
                 "3 successes of 5: 2 more failures cannot reach 50 %%, so it closes at once");
    payment_breaker_destroy(&b);
}

Test(payment_breaker, a_probe_round_reopens_as_soon_as_its_failures_reach_the_threshold)
{
    struct payment_breaker_config config = production;
    config.probe_calls = 4;
    struct payment_breaker b;
    payment_breaker_init(&b, &config);
    open_it(&b, 0);
    struct payment_breaker_ticket t[5];
    for (int i = 0; i < 4; i++) {
        t[i] = payment_breaker_acquire(&b, 30000 + i);
        cr_assert(t[i].allowed && t[i].probe);
    }
    t[4] = payment_breaker_acquire(&b, 30005);
    cr_assert_not(t[4].allowed, "no more than probe_calls probes in a round");
    payment_breaker_record(&b, t[0], true, 30100);
    cr_assert_eq(payment_breaker_state(&b, 30100), PAYMENT_BREAKER_HALF_OPEN);
    payment_breaker_record(&b, t[1], true, 30200);
    cr_assert_eq(payment_breaker_state(&b, 30200), PAYMENT_BREAKER_OPEN, "2 of 4 is 50 %%: open again");
    payment_breaker_record(&b, t[2], false, 30300); /* the round is over: a late success is stale */
    cr_assert_eq(payment_breaker_state(&b, 30300), PAYMENT_BREAKER_OPEN);
    cr_assert_not(payment_breaker_acquire(&b, 60199).allowed, "open counts from the deciding failure");
    payment_breaker_destroy(&b);
}

Test(payment_breaker, probes_out_of_range_are_refused_by_the_check)
{
    struct payment_breaker_config config = production;
    config.probe_calls = PAYMENT_BREAKER_PROBE_CALLS_MAX + 1;
    char why[128];
    cr_assert_not(payment_breaker_config_check(&config, why, sizeof(why)));
    cr_assert(strstr(why, "probes") != NULL, "%s", why);
}

/* Many threads hammering one breaker: at most probe_calls probes are ever out at
 * once (counted across all threads) and the state stays one of the three. */
struct hammer_shared {
    struct payment_breaker *breaker;
    _Atomic int64_t clock;
    _Atomic int probes_out;
    _Atomic int probes_max;
    _Atomic uint64_t probes;
};

struct hammer {
    struct hammer_shared *shared;
    unsigned seed;
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    struct hammer_shared *s = h->shared;
    for (int i = 0; i < 20000; i++) {
        int64_t now = atomic_fetch_add(&s->clock, 1);
        struct payment_breaker_ticket t = payment_breaker_acquire(s->breaker, now);
        if (!t.allowed)
            continue;
        if (t.probe) {
            atomic_fetch_add(&s->probes, 1);
            int out = atomic_fetch_add(&s->probes_out, 1) + 1;
            int seen = atomic_load(&s->probes_max);
            while (out > seen && !atomic_compare_exchange_weak(&s->probes_max, &seen, out))
                ;
        }
        bool failed = rand_r(&h->seed) % 100 < 60;
        if (t.probe) /* before the outcome lands: until then no other probe can be granted */
            atomic_fetch_sub(&s->probes_out, 1);
        payment_breaker_record(s->breaker, t, failed, atomic_load(&s->clock));
        enum payment_breaker_state state = payment_breaker_state_relaxed(s->breaker);
        cr_assert(state == PAYMENT_BREAKER_CLOSED || state == PAYMENT_BREAKER_OPEN ||
                  state == PAYMENT_BREAKER_HALF_OPEN);
    }
    return NULL;
}

static void hammer_run(uint32_t probe_calls)
{
    struct payment_breaker_config config = {.window_calls = 10, .failure_percent = 50, .open_ms = 50,
                                            .probe_timeout_ms = 1000000000, .probe_calls = probe_calls};
    struct payment_breaker b;
    payment_breaker_init(&b, &config);
    struct hammer_shared shared = {.breaker = &b};
    struct hammer per[4];
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        per[i] = (struct hammer){.shared = &shared, .seed = (unsigned)i + 1};
        pthread_create(&threads[i], NULL, hammer_main, &per[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
    cr_assert_leq(atomic_load(&shared.probes_max), (int)probe_calls, "at most %u probes at a time (max seen %d)",
                  probe_calls, atomic_load(&shared.probes_max));
    cr_assert_gt(atomic_load(&shared.probes), 0);
    cr_assert_gt(atomic_load(&b.transitions[PAYMENT_BREAKER_OPEN]), 0);
    cr_assert_gt(atomic_load(&b.transitions[PAYMENT_BREAKER_HALF_OPEN]), 0);
    payment_breaker_destroy(&b);
}

Test(payment_breaker, concurrent_callers_never_get_two_probes)
{
    hammer_run(1);
}

Test(payment_breaker, concurrent_callers_never_get_more_probes_than_a_round_allows)
{
    hammer_run(3);
}
