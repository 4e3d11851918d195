/* event_time.c — RFC 3339 parsing and formatting (event_time.h).
 *
 * Days from the civil date by Howard Hinnant's algorithm: exact over the whole
 * proleptic Gregorian calendar, no timegm(), no TZ environment involved. */
#include "event_time.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tk_assert.h"

#define MICROS_PER_SECOND INT64_C(1000000)
#define SECONDS_PER_DAY INT64_C(86400)

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *year, unsigned *month, unsigned *day)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *day = doy - (153 * mp + 2) / 5 + 1;
    *month = mp < 10 ? mp + 3 : mp - 9;
    *year = (int)(yoe + era * 400 + (*month <= 2));
}

static bool leap(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static unsigned days_in_month(int year, unsigned month)
{
    static const unsigned days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return month == 2 && leap(year) ? 29 : days[month - 1];
}

/* Reads exactly n digits. */
static bool digits(const char **p, unsigned n, unsigned *out)
{
    unsigned v = 0;
    for (unsigned i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (unsigned)(c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool expect(const char **p, const char *any_of)
{
    if (**p == '\0' || strchr(any_of, **p) == NULL)
        return false;
    (*p)++;
    return true;
}

/* ".123456789" -> microseconds (truncated); no fraction -> 0. */
static bool fraction(const char **p, int64_t *micros)
{
    *micros = 0;
    if (**p != '.')
        return true;
    (*p)++;
    unsigned count = 0;
    int64_t scale = 100000;
    while (**p >= '0' && **p <= '9') {
        if (++count > 9)
            return false;
        *micros += (**p - '0') * scale;
        scale /= 10;
        (*p)++;
    }
    return count > 0;
}

/* "Z" -> 0; "+hh:mm" / "-hh:mm" -> seconds east of UTC. */
static bool offset(const char **p, int64_t *seconds)
{
    if (**p == 'Z' || **p == 'z') {
        (*p)++;
        *seconds = 0;
        return true;
    }
    char sign = **p;
    if (sign != '+' && sign != '-')
        return false;
    (*p)++;
    unsigned hh, mm;
    if (!digits(p, 2, &hh) || !expect(p, ":") || !digits(p, 2, &mm) || hh > 23 || mm > 59)
        return false;
    *seconds = (int64_t)(hh * 3600 + mm * 60) * (sign == '-' ? -1 : 1);
    return true;
}

bool event_time_parse(const char *text, int64_t *micros)
{
    TK_ASSERT(micros != NULL);
    if (text == NULL)
        return false;
    const char *p = text;
    unsigned year, month, day, hour, minute, second;
    int64_t fraction_us, offset_s;
    if (!digits(&p, 4, &year) || !expect(&p, "-") || !digits(&p, 2, &month) || !expect(&p, "-") ||
        !digits(&p, 2, &day) || !expect(&p, "Tt ") || !digits(&p, 2, &hour) || !expect(&p, ":") ||
        !digits(&p, 2, &minute) || !expect(&p, ":") || !digits(&p, 2, &second) || !fraction(&p, &fraction_us) ||
        !offset(&p, &offset_s) || *p != '\0')
        return false;
    if (year < 1970 || month < 1 || month > 12 || day < 1 || day > days_in_month((int)year, month) || hour > 23 ||
        minute > 59 || second > 59)
        return false;
    int64_t seconds = days_from_civil(year, month, day) * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second;
    seconds -= offset_s;
    if (seconds < 0)
        return false;
    *micros = seconds * MICROS_PER_SECOND + fraction_us;
    return true;
}

static void split(int64_t micros, int *year, unsigned *month, unsigned *day, unsigned *hms, int64_t *sub)
{
    TK_ASSERT(micros >= 0);
    int64_t seconds = micros / MICROS_PER_SECOND;
    *sub = micros % MICROS_PER_SECOND;
    civil_from_days(seconds / SECONDS_PER_DAY, year, month, day);
    *hms = (unsigned)(seconds % SECONDS_PER_DAY);
}

void event_time_format(int64_t micros, char *out, size_t out_len)
{
    TK_ASSERT(out != NULL && out_len >= EVENT_TIME_TEXT_BYTES);
    int year;
    unsigned month, day, hms;
    int64_t sub;
    split(micros, &year, &month, &day, &hms, &sub);
    char frac[16] = "";
    if (sub != 0 && sub % 1000 == 0)
        snprintf(frac, sizeof(frac), ".%03d", (int)(sub / 1000));
    else if (sub != 0)
        snprintf(frac, sizeof(frac), ".%06d", (int)sub);
    snprintf(out, out_len, "%04d-%02u-%02uT%02u:%02u:%02u%sZ", year, month, day, hms / 3600, hms / 60 % 60, hms % 60,
             frac);
}

void event_time_format_sql(int64_t micros, char *out, size_t out_len)
{
    TK_ASSERT(out != NULL && out_len >= EVENT_TIME_TEXT_BYTES);
    int year;
    unsigned month, day, hms;
    int64_t sub;
    split(micros, &year, &month, &day, &hms, &sub);
    snprintf(out, out_len, "%04d-%02u-%02u %02u:%02u:%02u.%06d+00", year, month, day, hms / 3600, hms / 60 % 60,
             hms % 60, (int)sub);
}

int64_t event_time_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * MICROS_PER_SECOND + ts.tv_nsec / 1000;
}
