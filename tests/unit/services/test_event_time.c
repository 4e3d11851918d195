/* test_event_time.c — tests services/event/event_time.c: strict RFC 3339
 * parsing (offsets, fractions, calendar days) and the UTC forms replies and
 * SQL use. The source is compiled in (the unit build links shared libraries only). */
#include <criterion/criterion.h>
#include <string.h>

#include "../../../services/event/event_time.c"

static int64_t parse(const char *text)
{
    int64_t us = -1;
    cr_assert(event_time_parse(text, &us), "should parse: %s", text);
    return us;
}

Test(event_time, parses_utc_offsets_and_fractions)
{
    cr_assert_eq(parse("1970-01-01T00:00:00Z"), 0);
    cr_assert_eq(parse("2030-05-01T20:00:00Z"), INT64_C(1903896000) * 1000000);
    cr_assert_eq(parse("2030-05-01T22:00:00+02:00"), INT64_C(1903896000) * 1000000);
    cr_assert_eq(parse("2030-05-01T15:30:00-04:30"), INT64_C(1903896000) * 1000000);
    cr_assert_eq(parse("2030-05-01t20:00:00z"), INT64_C(1903896000) * 1000000);
    cr_assert_eq(parse("2030-05-01 20:00:00Z"), INT64_C(1903896000) * 1000000);
    cr_assert_eq(parse("2030-05-01T20:00:00.5Z"), INT64_C(1903896000) * 1000000 + 500000);
    cr_assert_eq(parse("2030-05-01T20:00:00.123456789Z"), INT64_C(1903896000) * 1000000 + 123456,
                 "nanoseconds are truncated to microseconds");
}

Test(event_time, knows_the_calendar)
{
    cr_assert_eq(parse("2028-02-29T00:00:00Z") + INT64_C(86400) * 1000000, parse("2028-03-01T00:00:00Z"));
    cr_assert_eq(parse("2000-02-29T00:00:00Z") + INT64_C(86400) * 1000000, parse("2000-03-01T00:00:00Z"));
    cr_assert_eq(parse("2030-12-31T23:59:59Z") + 1000000, parse("2031-01-01T00:00:00Z"));
    int64_t us;
    cr_assert_not(event_time_parse("2029-02-29T00:00:00Z", &us), "2029 is not a leap year");
    cr_assert_not(event_time_parse("2100-02-29T00:00:00Z", &us), "2100 is not a leap year");
    cr_assert_not(event_time_parse("2030-04-31T00:00:00Z", &us));
}

Test(event_time, refuses_anything_else)
{
    const char *bad[] = {"", "2030-05-01", "2030-05-01T20:00Z", "2030-05-01T20:00:00", "2030-05-01T20:00:00+0200",
                         "2030-5-01T20:00:00Z", "2030-05-01T24:00:00Z", "2030-05-01T20:60:00Z",
                         "2030-05-01T20:00:60Z", "2030-13-01T20:00:00Z", "2030-00-01T20:00:00Z",
                         "2030-05-00T20:00:00Z", "1969-12-31T23:59:59Z", "1970-01-01T00:30:00+01:00",
                         "2030-05-01T20:00:00.Z", "2030-05-01T20:00:00.1234567890Z", "2030-05-01T20:00:00Z ",
                         " 2030-05-01T20:00:00Z", "2030-05-01T20:00:00+24:00", "2030-05-01T20:00:00+02:60",
                         "tomorrow", "2030-05-01T20:00:00ZZ", "+2030-05-01T20:00:00Z"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t us = 42;
        cr_assert_not(event_time_parse(bad[i], &us), "should refuse '%s'", bad[i]);
        cr_assert_eq(us, 42, "nothing written for '%s'", bad[i]);
    }
    int64_t us;
    cr_assert_not(event_time_parse(NULL, &us));
}

Test(event_time, formats_utc_with_the_fraction_it_needs)
{
    char text[EVENT_TIME_TEXT_BYTES];
    event_time_format(parse("2030-05-01T22:00:00+02:00"), text, sizeof(text));
    cr_assert_str_eq(text, "2030-05-01T20:00:00Z");
    event_time_format(parse("2030-05-01T20:00:00.25Z"), text, sizeof(text));
    cr_assert_str_eq(text, "2030-05-01T20:00:00.250Z");
    event_time_format(parse("2030-05-01T20:00:00.000001Z"), text, sizeof(text));
    cr_assert_str_eq(text, "2030-05-01T20:00:00.000001Z");
    event_time_format(parse("9999-12-31T23:59:59.999999Z"), text, sizeof(text));
    cr_assert_str_eq(text, "9999-12-31T23:59:59.999999Z");
    event_time_format_sql(parse("2030-05-01T20:00:00.25Z"), text, sizeof(text));
    cr_assert_str_eq(text, "2030-05-01 20:00:00.250000+00");
}

Test(event_time, round_trips_every_day_of_a_century)
{
    char text[EVENT_TIME_TEXT_BYTES];
    for (int64_t day = 0; day < 36525; day += 7) {
        int64_t us = day * INT64_C(86400) * 1000000 + INT64_C(45296) * 1000000 + 7000; /* 12:34:56.007 */
        event_time_format(us, text, sizeof(text));
        cr_assert_eq(parse(text), us, "round trip of %s", text);
    }
}
