/* test_event_spec.c — tests services/event/event_spec.c: every CreateEvent rule,
 * the message naming the field, defaults, seat numbering across sections. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../../services/event/event_spec.c"
#include "../../../services/event/event_time.c"

struct fixture {
    Tiketi__V1__CreateEventCatalogRequest request;
    Tiketi__V1__SectionSpec sections[TK_SECTIONS_PER_EVENT_MAX + 1];
    Tiketi__V1__SectionSpec *list[TK_SECTIONS_PER_EVENT_MAX + 1];
    char names[TK_SECTIONS_PER_EVENT_MAX + 1][40];
    Tiketi__V1__QueueSpec queue;
};

/* A valid request with `count` sections of rows x seats. */
static void valid(struct fixture *f, size_t count, uint32_t rows, uint32_t seats)
{
    memset(f, 0, sizeof(*f));
    tiketi__v1__create_event_catalog_request__init(&f->request);
    f->request.name = "Spring Concert";
    f->request.venue = "Arena";
    f->request.starts_at = "2031-05-01T20:00:00Z";
    f->request.sale_opens_at = "2031-04-01T10:00:00+02:00";
    f->request.admin_user_id = "42";
    for (size_t s = 0; s < count; s++) {
        tiketi__v1__section_spec__init(&f->sections[s]);
        snprintf(f->names[s], sizeof(f->names[s]), "S%zu", s);
        f->sections[s].name = f->names[s];
        f->sections[s].rows = rows;
        f->sections[s].seats_per_row = seats;
        f->sections[s].price_cents = 1000 + (uint32_t)s;
        f->list[s] = &f->sections[s];
    }
    f->request.sections = f->list;
    f->request.n_sections = count;
    tiketi__v1__queue_spec__init(&f->queue);
    f->request.queue = &f->queue;
}

static void refused(struct fixture *f, const char *mentions)
{
    struct event_spec spec;
    char reason[EVENT_REASON_BYTES];
    cr_assert_not(event_spec_from_request(&f->request, &spec, reason, sizeof(reason)), "should refuse (%s)",
                  mentions);
    cr_assert(strstr(reason, mentions) != NULL, "reason '%s' should mention '%s'", reason, mentions);
}

Test(event_spec, accepts_a_valid_request_and_numbers_the_seats)
{
    struct fixture f;
    valid(&f, 3, 10, 20);
    f.request.hold_ttl_s = 120;
    f.request.max_seats_per_user = 6;
    f.queue = (Tiketi__V1__QueueSpec)TIKETI__V1__QUEUE_SPEC__INIT;
    f.queue.enabled = true;
    f.queue.admit_per_s = 50;
    f.queue.max_active = 500;
    struct event_spec spec;
    char reason[EVENT_REASON_BYTES];
    cr_assert(event_spec_from_request(&f.request, &spec, reason, sizeof(reason)), "%s", reason);
    cr_assert_str_eq(spec.name, "Spring Concert");
    cr_assert_eq(spec.capacity, 600);
    cr_assert_eq(spec.section_count, 3);
    cr_assert_eq(spec.sections[0].first_seat, 0);
    cr_assert_eq(spec.sections[1].first_seat, 200);
    cr_assert_eq(spec.sections[2].first_seat, 400);
    cr_assert_eq(spec.sections[2].price_cents, 1002);
    cr_assert_eq(spec.starts_at_us - spec.sale_opens_at_us, (INT64_C(30) * 86400 + 12 * 3600) * 1000000);
    cr_assert(spec.queue_enabled);
    cr_assert_eq(spec.admit_per_s, 50);
    cr_assert_eq(spec.hold_ttl_s, 120);
    cr_assert_eq(spec.max_seats_per_user, 6);
    cr_assert_eq(spec.admin_user_id, 42);
}

Test(event_spec, fills_defaults_and_ignores_settings_of_a_disabled_queue)
{
    struct fixture f;
    valid(&f, 1, 1, 1);
    f.queue.admit_per_s = 7; /* without enabled: meaningless, not stored */
    f.request.queue = NULL;
    struct event_spec spec;
    char reason[EVENT_REASON_BYTES];
    cr_assert(event_spec_from_request(&f.request, &spec, reason, sizeof(reason)), "%s", reason);
    cr_assert_eq(spec.hold_ttl_s, EVENT_HOLD_TTL_S_DEFAULT);
    cr_assert_eq(spec.max_seats_per_user, EVENT_SEATS_PER_USER_DEFAULT);
    cr_assert_not(spec.queue_enabled);
    cr_assert_eq(spec.admit_per_s, 0);
    cr_assert_eq(spec.capacity, 1);
}

Test(event_spec, capacity_bound_is_the_engine_bound)
{
    struct fixture f;
    valid(&f, 2, 100, 1000); /* exactly 200,000 */
    struct event_spec spec;
    char reason[EVENT_REASON_BYTES];
    cr_assert(event_spec_from_request(&f.request, &spec, reason, sizeof(reason)), "%s", reason);
    cr_assert_eq(spec.capacity, TK_SEATS_PER_EVENT_MAX);
    valid(&f, 64, 1000, 1000); /* 64 million: no overflow on the way */
    refused(&f, "capacity");
    valid(&f, 3, 100, 667);
    refused(&f, "at most 200000 (got 200100)");
}

Test(event_spec, names_the_field_at_fault)
{
    struct fixture f;
    char long_name[300];
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    valid(&f, 1, 1, 1), f.request.name = "", refused(&f, "name is required");
    valid(&f, 1, 1, 1), f.request.name = "  ", refused(&f, "name must not be blank");
    valid(&f, 1, 1, 1), f.request.name = long_name, refused(&f, "name is at most 200 bytes");
    valid(&f, 1, 1, 1), f.request.name = "tab\there", refused(&f, "control characters");
    valid(&f, 1, 1, 1), f.request.name = "bad \xc3\x28 utf8", refused(&f, "name is not valid UTF-8");
    valid(&f, 1, 1, 1), f.request.venue = "", refused(&f, "venue is required");
    valid(&f, 1, 1, 1), f.request.starts_at = "", refused(&f, "starts_at is required");
    valid(&f, 1, 1, 1), f.request.starts_at = "2031-05-01", refused(&f, "starts_at is not an RFC 3339");
    valid(&f, 1, 1, 1), f.request.sale_opens_at = "soon", refused(&f, "sale_opens_at is not an RFC 3339");
    valid(&f, 1, 1, 1), f.request.sale_opens_at = "2031-05-01T22:00:00+02:00", refused(&f, "before starts_at");
    valid(&f, 0, 1, 1), refused(&f, "1..64 sections (got 0)");
    valid(&f, 65, 1, 1), refused(&f, "1..64 sections (got 65)");
    valid(&f, 2, 1, 1), f.sections[1].name = "", refused(&f, "sections[1].name is required");
    valid(&f, 2, 1, 1), f.sections[1].name = "0123456789012345678901234567890123", refused(&f, "at most 31 bytes");
    valid(&f, 2, 1, 1), f.sections[1].name = "S0", refused(&f, "'S0' is used twice");
    valid(&f, 1, 0, 1), refused(&f, "sections[0] (S0): rows must be 1..1000");
    valid(&f, 1, 1001, 1), refused(&f, "rows must be 1..1000");
    valid(&f, 1, 1, 0), refused(&f, "seats_per_row must be 1..1000");
    valid(&f, 1, 1, 1001), refused(&f, "seats_per_row must be 1..1000");
    valid(&f, 1, 1, 1), f.sections[0].price_cents = 100000001, refused(&f, "price_cents must be 0..100000000");
    valid(&f, 1, 1, 1), f.queue.enabled = true, f.queue.max_active = 1, refused(&f, "queue.admit_per_s");
    valid(&f, 1, 1, 1), f.queue.enabled = true, f.queue.admit_per_s = 1, refused(&f, "queue.max_active");
    valid(&f, 1, 1, 1), f.queue.enabled = true, f.queue.admit_per_s = 100001, f.queue.max_active = 1,
        refused(&f, "queue.admit_per_s must be 1..100000");
    valid(&f, 1, 1, 1), f.request.hold_ttl_s = 3601, refused(&f, "hold_ttl_s must be 1..3600");
    valid(&f, 1, 1, 1), f.request.max_seats_per_user = 101, refused(&f, "max_seats_per_user must be 1..100");
    valid(&f, 1, 1, 1), f.request.admin_user_id = "", refused(&f, "admin_user_id");
    valid(&f, 1, 1, 1), f.request.admin_user_id = "042", refused(&f, "admin_user_id");
    valid(&f, 1, 1, 1), f.request.admin_user_id = "9223372036854775808", refused(&f, "admin_user_id");
}

Test(event_spec, utf8_rules)
{
    cr_assert(event_text_valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xb5", 14));
    cr_assert_not(event_text_valid_utf8("\xc0\xaf", 2), "overlong");
    cr_assert_not(event_text_valid_utf8("\xe0\x80\xaf", 3), "overlong");
    cr_assert_not(event_text_valid_utf8("\xed\xa0\x80", 3), "a surrogate");
    cr_assert_not(event_text_valid_utf8("\xf4\x90\x80\x80", 4), "past U+10FFFF");
    cr_assert_not(event_text_valid_utf8("\xe2\x82", 2), "cut short");
    cr_assert_not(event_text_valid_utf8("\x80", 1), "a lone continuation byte");
    cr_assert_not(event_text_valid_utf8("\xff", 1));
}

Test(event_spec, ids)
{
    uint64_t id = 0;
    cr_assert(event_id_parse("1", &id) && id == 1);
    cr_assert(event_id_parse("9223372036854775807", &id) && id == INT64_MAX);
    const char *bad[] = {"", "0", "01", "-1", "+1", " 1", "1 ", "1e3", "abc", "9223372036854775808",
                         "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_not(event_id_parse(bad[i], &id), "should refuse '%s'", bad[i]);
    cr_assert_not(event_id_parse(NULL, &id));
}
