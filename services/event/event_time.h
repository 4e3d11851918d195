/* event_time.h — RFC 3339 timestamps <-> microseconds since the Unix epoch.
 *
 * Requests carry RFC 3339 text with any offset; the catalog keeps TIMESTAMPTZ
 * (microsecond precision) and replies always use UTC with "Z". Parsing is
 * strict (every field range-checked, calendar days included) because the text
 * comes from outside; a fraction finer than a microsecond is truncated. */
#ifndef EVENT_TIME_H
#define EVENT_TIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Years 1970..9999 only: the catalog has no use for earlier times. */
#define EVENT_TIME_TEXT_BYTES 40u

/* false (nothing written) unless text is a complete RFC 3339 date-time. */
bool event_time_parse(const char *text, int64_t *micros);
/* "2030-05-01T20:00:00Z", with ".123" or ".123456" when there is a fraction. */
void event_time_format(int64_t micros, char *out, size_t out_len);
/* "2030-05-01 20:00:00.000000+00", exact input for a PostgreSQL timestamptz. */
void event_time_format_sql(int64_t micros, char *out, size_t out_len);
int64_t event_time_now_us(void);

#endif
