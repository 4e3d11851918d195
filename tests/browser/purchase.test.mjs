// purchase.test.mjs — drives the TIKETI web UI in Debian's chromium (playwright-core, no
// browser download) the way a person would: sign up, find the event, choose seats, pay with
// the gateway simulator's test cards, see "confirmed", cancel; at desktop and phone width.
//
// Environment (tests/browser/run sets it):
//   TIKETI_BASE       the edge (or the mock) base URL
//   TIKETI_MOCK=1     the base is tests/browser/mock_api.py: the mock-only tests run too
//   TIKETI_ARTIFACTS  where screenshots go (default <repo>/.tiketi/artifacts/browser)
//   TIKETI_ADMIN_EMAIL / TIKETI_ADMIN_PASSWORD  to create the test's own events (API.md)
//   TIKETI_BROWSER_ONLY  a substring: run only the tests whose name contains it
// Prints one line per test, then `N passed, M failed[, K skipped]`; exit status 1 on failure.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const BASE = (process.env.TIKETI_BASE || process.env.TIKETI_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const MOCK = process.env.TIKETI_MOCK === '1';
const ARTIFACTS = process.env.TIKETI_ARTIFACTS || path.join(here, '..', '..', '.tiketi', 'artifacts', 'browser');
const CHROMIUM = process.env.TIKETI_CHROMIUM || '/usr/bin/chromium';
const ADMIN_EMAIL = process.env.TIKETI_ADMIN_EMAIL || 'admin@tiketi.local';
const ADMIN_PASSWORD = process.env.TIKETI_ADMIN_PASSWORD || 'tiketi-admin';
const ONLY = process.env.TIKETI_BROWSER_ONLY || '';
const TEST_TIMEOUT_MS = Number(process.env.TIKETI_BROWSER_TEST_TIMEOUT_MS || 120000);
const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
// Faster polling than a person needs, so live-update checks finish quickly.
const UI_OPTIONS = { poll_ms: 1000, poll_ms_large: 5000, poll_ms_with_ws: 10000, queue_poll_ms: 700 };
const PHONE = { viewport: { width: 360, height: 740 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };
const DESKTOP = { viewport: { width: 1280, height: 900 } };
const RUN = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;

fs.mkdirSync(ARTIFACTS, { recursive: true });

// ---- tiny test harness -------------------------------------------------------------------

const tests = [];
function test(name, fn, opts = {}) { tests.push({ name, fn, ...opts }); }

class Skip extends Error {}

function expect(cond, message) {
  if (!cond) throw new Error(message);
}

// ---- API helpers (Node's fetch; the UI itself is only driven through the browser) ---------

async function call(method, p, { body, token, headers = {} } = {}) {
  const h = { Accept: 'application/json', ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  if (token) h.Authorization = `Bearer ${token}`;
  const res = await fetch(BASE + p, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  return { status: res.status, body: data };
}

async function new_user(label) {
  const email = `ui-${label}-${RUN}-${Math.floor(Math.random() * 1e6)}@example.test`;
  const password = 'correct-horse-42';
  const name = `Test ${label}`;
  const s = await call('POST', '/api/v1/auth/signup', { body: { email, password, name } });
  expect(s.status === 201, `signup via API gave ${s.status} ${JSON.stringify(s.body)}`);
  const l = await call('POST', '/api/v1/auth/login', { body: { email, password } });
  expect(l.status === 200, `login via API gave ${l.status}`);
  return { email, password, name, token: l.body.access_token };
}

let admin_token = null;
async function admin() {
  if (admin_token !== null) return admin_token;
  const l = await call('POST', '/api/v1/auth/login', { body: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD } });
  admin_token = l.status === 200 ? l.body.access_token : '';
  return admin_token;
}

// The test's own event (admin API), so runs never fight over seats. Without admin rights
// it falls back to an on-sale event of the right kind that the stack already has.
const made = new Map();
async function test_event(kind) {
  if (made.has(kind)) return made.get(kind);
  const queued = kind === 'queued';
  const token = await admin();
  let ev = null;
  if (token) {
    const now = Date.now();
    const name = `${queued ? 'Queue' : 'Browser'} test ${RUN}`;
    const r = await call('POST', '/api/v1/admin/events', {
      token,
      body: {
        name, venue: 'Test Hall',
        starts_at: new Date(now + 30 * 86400e3).toISOString(), sale_opens_at: new Date(now - 60e3).toISOString(),
        sections: [{ name: 'Stalls', rows: 6, seats_per_row: 12, price: 4000 }, { name: 'Balcony', rows: 3, seats_per_row: 10, price: 2500 }],
        queue: queued ? { enabled: true, admit_per_s: 1, max_active: 100 } : { enabled: false, admit_per_s: 0, max_active: 0 },
        hold_ttl_s: 300, max_seats_per_user: 6,
      },
    });
    if (r.status === 201) ev = { event_id: String(r.body.event_id), name };
    else console.log(`# creating a test event as admin gave ${r.status}; looking for an existing event`);
  }
  if (!ev) ev = await existing_event(queued);
  made.set(kind, ev);
  return ev;
}

async function existing_event(queued) {
  const list = await call('GET', '/api/v1/events?status=on_sale&limit=100');
  for (const e of (list.body && list.body.events) || []) {
    if (Number(e.available) < 12) continue;
    const d = await call('GET', `/api/v1/events/${encodeURIComponent(e.event_id)}`);
    const detail = d.body && d.body.event ? { ...d.body, ...d.body.event } : d.body;
    const has_queue = Boolean(detail && detail.queue && detail.queue.enabled);
    if (has_queue === queued && Number(e.capacity) <= 5000) return { event_id: String(e.event_id), name: e.name };
  }
  throw new Error(`no on-sale event ${queued ? 'with' : 'without'} a waiting room to test with (set TIKETI_ADMIN_EMAIL/PASSWORD so the test can create one)`);
}

// ---- browser helpers -------------------------------------------------------------------------

async function open_browser(device = DESKTOP) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiketi-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS, ...device,
  });
  await context.addInitScript((opts) => { window.TIKETI_UI_OPTIONS = opts; }, UI_OPTIONS);
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(20000);
  const console_errors = [];
  page.on('pageerror', (e) => console_errors.push(String(e)));
  return { context, page, dir, console_errors };
}

async function shot(page, name) {
  const file = path.join(ARTIFACTS, name);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

async function sign_up_in_ui(page, label) {
  const email = `ui-${label}-${RUN}-${Math.floor(Math.random() * 1e6)}@example.test`;
  await page.goto(`${BASE}/#/events`);
  await page.getByRole('link', { name: 'Sign up' }).first().click();
  await page.getByLabel('Name').fill(`Ada ${label}`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('correct-horse-42');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.locator('#logout').waitFor();
  const who = await page.locator('#who').textContent(); // hidden at phone width, still there
  expect(who.includes(`Ada ${label}`), `the header shows ${who}, not the new user`);
  return { email, password: 'correct-horse-42' };
}

async function log_in_in_ui(page, user) {
  await page.goto(`${BASE}/#/login`);
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#logout').waitFor();
}

async function open_event_by_search(page, ev) {
  await page.goto(`${BASE}/#/events`);
  await page.getByLabel('Search events').fill(ev.name.replace(/[^\p{L}\p{N}\s]+/gu, ' ').trim());
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('link', { name: ev.name }).click();
  await page.waitForURL(new RegExp(`#/events/${ev.event_id}$`));
  await page.locator('#seatmap[data-mode]').waitFor();
}

async function choose_seats_button(page) {
  await page.locator('#get-tickets').click();
  await page.locator('#turn').waitFor();
}

// Clicks the first `n` free seats of a section (SVG map).
async function pick_free_seats(page, n, section_index = 0) {
  const seats = page.locator(`#seatmap g.section[data-section="${section_index}"] rect.s-free:not(.selected)`);
  for (let k = 0; k < n; k++) await seats.first().click();
}

async function pay_with(page, token) {
  await page.locator(`#card-${token}`).check();
  await page.locator('#pay').click();
}

// ---- the tests -----------------------------------------------------------------------------------

test('desktop: sign up, choose 2 seats, pay, confirmed, then cancel in My reservations', async ({ page }) => {
  const ev = await test_event('plain');
  await sign_up_in_ui(page, 'desktop');
  await open_event_by_search(page, ev);
  expect(await page.locator('#seatmap').getAttribute('data-mode') === 'svg', 'a small map should be SVG');
  await choose_seats_button(page);
  // Keyboard: "Choose seats" focuses the map on the first free seat; Enter selects it,
  // ArrowRight moves to the next seat, Space selects that one.
  await page.locator('#seatmap .map-scroller:focus').waitFor();
  await page.keyboard.press('Enter');
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('Space');
  await page.locator('#selection li').nth(1).waitFor();
  const ring = await page.locator('#seatmap .seat-ring').boundingBox();
  const second = await page.locator('#seatmap rect.selected').nth(1).boundingBox();
  const cx = ring.x + ring.width / 2, cy = ring.y + ring.height / 2;
  expect(cx > second.x && cx < second.x + second.width && cy > second.y && cy < second.y + second.height,
    `the keyboard focus ring is not on the focused seat: ring ${JSON.stringify(ring)}, seat ${JSON.stringify(second)}`);
  await shot(page, 'event-desktop.png');
  const hold = page.locator('#hold-selected');
  expect((await hold.textContent()).includes('Hold 2 seats'), `hold button says ${await hold.textContent()}`);
  await hold.click();
  await page.waitForURL(/#\/checkout\//);
  await page.locator('#order-seats li').nth(1).waitFor();
  expect(await page.locator('#order-seats li').count() === 2, 'the order should list 2 seats');
  await page.locator('#hold-timer').waitFor();
  await pay_with(page, 'tok_approve');
  await page.locator('#confirmed').waitFor();
  expect((await page.locator('#confirmed').textContent()).includes('confirmed'), 'no "confirmed" text');
  const file = await shot(page, 'purchase-desktop.png');
  await page.getByRole('link', { name: 'My reservations' }).first().click();
  const item = page.locator('li.reservation[data-status="confirmed"]');
  await item.waitFor();
  await shot(page, 'reservations-desktop.png');
  await item.getByRole('button', { name: 'Cancel booking' }).click();
  await item.getByRole('button', { name: 'Yes, cancel and refund' }).click();
  await page.locator('li.reservation[data-status="cancelled"]').waitFor();
  return file;
});

test('phone 360 px: best available in a section, slow bank spinner, confirmed', async ({ page }) => {
  const ev = await test_event('plain');
  await sign_up_in_ui(page, 'phone');
  await page.locator('.event-card').first().waitFor();
  await shot(page, 'events-phone.png');
  await open_event_by_search(page, ev);
  await choose_seats_button(page);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow <= 0, `the page scrolls sideways by ${overflow}px at 360 px`);
  await shot(page, 'event-phone.png');
  await page.getByLabel('Seats', { exact: true }).fill('1');
  await page.getByLabel('Section').selectOption('Balcony');
  await page.locator('#hold-best').click();
  await page.waitForURL(/#\/checkout\//);
  await pay_with(page, 'tok_slow');
  await page.getByText('Waiting for the bank').waitFor({ timeout: 3000 });
  await page.locator('#confirmed').waitFor({ timeout: 30000 });
  return shot(page, 'purchase-phone.png');
}, { device: PHONE });

test('declined card: clear message, seats released, way back to the seats', async ({ page }) => {
  const ev = await test_event('plain');
  const user = await new_user('decline');
  await log_in_in_ui(page, user);
  await page.goto(`${BASE}/#/events/${ev.event_id}`);
  await choose_seats_button(page);
  await pick_free_seats(page, 1, 1);
  await page.locator('#hold-selected').click();
  await page.waitForURL(/#\/checkout\//);
  await pay_with(page, 'tok_decline');
  const alert = page.locator('[role="alert"][data-code="payment_declined"]');
  await alert.waitFor();
  expect((await alert.textContent()).includes('declined'), 'the message should say the card was declined');
  await page.getByRole('link', { name: 'Choose seats again' }).waitFor();
  await shot(page, 'declined.png');
  const list = await call('GET', '/api/v1/reservations', { token: user.token });
  const items = Array.isArray(list.body) ? list.body : list.body.reservations || [];
  expect(items.length === 1 && items[0].status !== 'pending' && items[0].status !== 'confirmed', `after a decline the reservation is ${JSON.stringify(items.map((r) => r.status))}`);
});

test('gateway error: the payment stays undecided, the hold is kept, the card choice is locked', async ({ page }) => {
  const ev = await test_event('plain');
  const user = await new_user('gwerror');
  await log_in_in_ui(page, user);
  await page.goto(`${BASE}/#/events/${ev.event_id}`);
  await choose_seats_button(page);
  await pick_free_seats(page, 1, 1);
  await page.locator('#hold-selected').click();
  await page.waitForURL(/#\/checkout\//);
  await pay_with(page, 'tok_error');
  const alert = page.locator('#checkout-result [role="alert"]');
  await alert.waitFor();
  const text = await alert.textContent();
  expect(/don.t know yet/i.test(text) && /charged twice/i.test(text) && /try again/i.test(text),
    `unexpected message after tok_error: ${text}`);
  // reservation-svc keeps asking about the undecided charge (same card, same key): the form
  // must not offer another card, which the server would ignore.
  await page.locator('#card-locked:not([hidden])').waitFor();
  await page.locator('#pay:not([disabled])').waitFor({ timeout: 15000 });
  expect(await page.locator('#card-tok_approve').isDisabled(), 'another card can still be chosen');
  expect(await page.locator('#card-tok_error').isChecked(), 'the undecided card is not the one selected');
  await page.locator('#pay').click();
  await alert.waitFor();
  expect(/don.t know yet/i.test(await alert.textContent()), 'paying again should ask about the same payment');
  const held = await call('GET', '/api/v1/reservations', { token: user.token });
  const items = Array.isArray(held.body) ? held.body : held.body.reservations || [];
  expect(items.length === 1 && items[0].status !== 'released' && items[0].status !== 'confirmed',
    `after an undecided payment the reservation is ${JSON.stringify(items.map((r) => r.status))}`);
  await shot(page, 'undecided-payment.png');
});

test('live seat map: a seat someone else takes leaves my selection', async ({ page }) => {
  const ev = await test_event('plain');
  const me = await new_user('live');
  await log_in_in_ui(page, me);
  await page.goto(`${BASE}/#/events/${ev.event_id}`);
  await page.locator('#seatmap[data-mode]').waitFor();
  await choose_seats_button(page);
  const seat = page.locator('#seatmap g.section[data-section="0"] rect.s-free').last();
  const index = await seat.getAttribute('data-i');
  await seat.click();
  await page.locator('#selection li').first().waitFor();
  const seats = (await call('GET', `/api/v1/events/${ev.event_id}/seats`)).body.seats;
  const seat_id = seats[Number(index)].seat_id;
  const other = await new_user('other');
  const q = await call('POST', `/api/v1/events/${ev.event_id}/queue`, { token: other.token, body: {} });
  expect(q.body && q.body.admission_token, `the other user was not admitted: ${JSON.stringify(q.body)}`);
  const held = await call('POST', `/api/v1/events/${ev.event_id}/holds`, {
    token: other.token, body: { seat_ids: [seat_id] },
    headers: { 'X-Admission-Token': q.body.admission_token, 'Idempotency-Key': `k-${RUN}-${index}` },
  });
  expect(held.status === 201, `the other user's hold gave ${held.status} ${JSON.stringify(held.body)}`);
  await page.locator(`#seatmap rect[data-i="${index}"].s-held`).waitFor({ timeout: 20000 });
  await page.getByText('just taken by someone else').waitFor();
  expect(await page.locator('#selection li').count() === 0, 'the taken seat is still in my selection');
});

test('waiting room: position and ETA, then admitted to seat selection', async ({ page }) => {
  const ev = await test_event('queued');
  const user = await new_user('queue');
  await log_in_in_ui(page, user);
  await page.goto(`${BASE}/#/events/${ev.event_id}`);
  await page.locator('#seatmap[data-mode]').waitFor();
  await page.getByRole('button', { name: 'Join the waiting room' }).click();
  // Either the line is short enough to be admitted at once, or the waiting room shows.
  await Promise.race([page.locator('#queue-position').waitFor(), page.locator('#turn').waitFor()]);
  if (await page.locator('#queue-card').count()) {
    await page.waitForFunction(() => /^\d+$/.test(document.querySelector('#queue-position')?.textContent || ''));
    const eta = await page.locator('#queue-eta').textContent();
    expect(/next|wait/i.test(eta), `no ETA shown: ${eta}`);
    await shot(page, 'waiting-room.png');
  } else {
    expect(!MOCK, 'the mock should have shown the waiting room');
  }
  await page.locator('#turn').waitFor({ timeout: 60000 });
});

test('release from checkout, release a pending hold in My reservations, leave the line, log out', async ({ page }) => {
  const ev = await test_event('plain');
  const user = await new_user('odds');
  await log_in_in_ui(page, user);
  await page.goto(`${BASE}/#/events/${ev.event_id}`);
  await choose_seats_button(page);
  await pick_free_seats(page, 1, 1);
  await page.locator('#hold-selected').click();
  await page.waitForURL(/#\/checkout\//);
  await page.locator('#release').click();
  await page.waitForURL(new RegExp(`#/events/${ev.event_id}$`));
  await page.getByText('Your seats were released.').waitFor();
  await page.locator('#turn').waitFor(); // still admitted: straight back to choosing
  await pick_free_seats(page, 1, 1);
  await page.locator('#hold-selected').click();
  await page.waitForURL(/#\/checkout\//);
  await page.getByRole('link', { name: 'My reservations' }).click();
  const pending = page.locator('li.reservation[data-status="pending"]');
  await pending.getByRole('link', { name: 'Pay now' }).waitFor();
  const rid = await pending.getAttribute('data-reservation');
  await pending.getByRole('button', { name: 'Release seats' }).click();
  await page.locator(`li.reservation[data-reservation="${rid}"][data-status="cancelled"]`).waitFor();
  const queued = await test_event('queued');
  await page.goto(`${BASE}/#/events/${queued.event_id}`);
  await page.getByRole('button', { name: 'Join the waiting room' }).click();
  await Promise.race([page.locator('#leave-queue').waitFor(), page.locator('#turn').waitFor()]);
  if (await page.locator('#leave-queue').count()) {
    await page.locator('#leave-queue').click();
    await page.waitForURL(new RegExp(`#/events/${queued.event_id}$`));
    await page.getByRole('button', { name: 'Join the waiting room' }).waitFor();
  }
  await page.locator('#logout').click();
  await page.getByRole('link', { name: 'Log in' }).first().waitFor();
  expect(await page.locator('#who').count() === 0, 'still shows a user after logging out');
  await page.goto(`${BASE}/#/reservations`);
  await page.waitForURL(/#\/login\?next=/);
});

test('seat map model: deltas, stale versions, missed changes and lost selections', async ({ page }) => {
  await page.goto(`${BASE}/#/events`);
  const r = await page.evaluate(async () => {
    const { SeatMap } = await import('/js/seatmap.js');
    const host = document.createElement('div');
    document.body.append(host);
    const lost = [];
    const m = new SeatMap(host, { on_lost: (seats) => lost.push(...seats.map((x) => x.label)) });
    const seat = (id, number, status) => ({ seat_id: id, section: 'A', row: 1, number, label: `A-1-${number}`, price: 1000, status });
    m.load({ version: 5, seats: [seat('10', 1, 'free'), seat('11', 2, 'free'), seat('12', 3, 'sold')] });
    m.set_selected(m.index_of('11'), true);
    const out = { mode: m.mode };
    out.missed1 = m.apply_changes(6, [['10', 'held'], [11, 'sold']], 5);
    out.after1 = [...m.status];
    out.lost = [...lost];
    out.selected = m.selected_ids();
    m.apply_changes(6, [['10', 'free']], 5); // same version again: ignored
    out.after_stale = [...m.status];
    out.missed2 = m.apply_changes(9, [['12', 'free']], 8);
    out.version_after_missed = m.version;
    m.replace({ version: 9, seats: [seat('10', 1, 'free'), seat('11', 2, 'sold'), seat('12', 3, 'free')] });
    out.after_replace = [...m.status];
    out.version = m.version;
    out.free = m.free_count();
    m.destroy();
    return out;
  });
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  expect(r.mode === 'svg', `mode ${r.mode}`);
  expect(r.missed1 === false && same(r.after1, [1, 2, 2]), `first delta: ${JSON.stringify(r)}`);
  expect(same(r.lost, ['A-1-2']) && same(r.selected, []), `the sold seat should leave the selection: ${JSON.stringify(r)}`);
  expect(same(r.after_stale, [1, 2, 2]), `a stale delta was applied: ${JSON.stringify(r)}`);
  expect(r.missed2 === true && r.version_after_missed === 6, `missed changes not detected: ${JSON.stringify(r)}`);
  expect(same(r.after_replace, [0, 2, 0]) && r.version === 9 && r.free === 2, `refetch not applied: ${JSON.stringify(r)}`);
});

test('mock: seat_unavailable marks the taken seats on the map', async ({ page }) => {
  const ev = await test_event('plain');
  const user = await new_user('conflict');
  await log_in_in_ui(page, user);
  await page.goto(`${BASE}/#/events/${ev.event_id}`);
  await choose_seats_button(page);
  const seat = page.locator('#seatmap g.section[data-section="1"] rect.s-free').last();
  const index = await seat.getAttribute('data-i');
  await seat.click();
  const seats = (await call('GET', `/api/v1/events/${ev.event_id}/seats`)).body.seats;
  await call('POST', '/__mock/stale_seats', { body: { event_id: ev.event_id, seat_ids: [seats[Number(index)].seat_id], status: 'sold' } });
  await page.locator('#hold-selected').click();
  const alert = page.locator('[role="alert"][data-code="seat_unavailable"]');
  await alert.waitFor();
  expect((await alert.textContent()).includes(seats[Number(index)].label), 'the message should name the taken seat');
  await page.locator(`#seatmap rect[data-i="${index}"].flagged`).waitFor();
  await shot(page, 'seat-unavailable.png');
}, { mock_only: true });

test('mock: rate_limited shows the Retry-After wait', async ({ page }) => {
  const ev = await test_event('plain');
  const user = await new_user('ratelimit');
  await log_in_in_ui(page, user);
  await page.goto(`${BASE}/#/events/${ev.event_id}`);
  await choose_seats_button(page);
  await pick_free_seats(page, 1, 1);
  await call('POST', '/__mock/rate_limit_next', { body: { path_contains: '/holds', retry_after: 3 } });
  await page.locator('#hold-selected').click();
  const alert = page.locator('[role="alert"][data-code="rate_limited"]');
  await alert.waitFor();
  expect(/wait [1-3] seconds?/.test(await alert.textContent()), `no wait in: ${await alert.textContent()}`);
  await alert.getByText('You can try again now.').waitFor({ timeout: 6000 });
}, { mock_only: true });

test('mock: an expired access token is refreshed once, silently', async ({ page }) => {
  const user = await new_user('refresh');
  await log_in_in_ui(page, user);
  await call('POST', '/__mock/expire_access_tokens', { body: {} });
  await page.getByRole('link', { name: 'My reservations' }).click();
  await page.getByText("You don't have any reservations yet.").waitFor();
  expect(!page.url().includes('#/login'), 'sent to login instead of refreshing');
}, { mock_only: true });

test('mock: a 200,000-seat map renders on a canvas and stays responsive', async ({ page }) => {
  const list = await call('GET', '/api/v1/events?q=Cup%20Final');
  const ev = list.body.events.find((e) => e.capacity >= 200000);
  expect(ev, 'the mock has no 200k-seat event');
  const t0 = Date.now();
  await page.goto(`${BASE}/#/events/${ev.event_id}`);
  await page.locator('#seatmap[data-mode="canvas"]').waitFor({ timeout: 60000 });
  const load_ms = Date.now() - t0;
  const box = await page.locator('#seatmap canvas').boundingBox();
  const t1 = Date.now();
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.5);
  await page.waitForFunction(() => /Section S\d+, row \d+, seat \d+/.test(document.querySelector('.seat-info')?.textContent || ''));
  const hover_ms = Date.now() - t1;
  await page.locator('button[aria-label="Zoom in"]').click();
  const t2 = Date.now();
  await page.waitForFunction(() => document.querySelector('#seatmap canvas') !== null);
  const zoom_ms = Date.now() - t2;
  console.log(`# 200k seats: page to canvas ${load_ms} ms, hover info ${hover_ms} ms, zoom ${zoom_ms} ms`);
  expect(hover_ms < 2000, `hover took ${hover_ms} ms`);
  await page.locator('button[aria-label="Zoom out"]').click();
  await shot(page, 'stadium-canvas.png');
}, { mock_only: true });

// ---- runner ------------------------------------------------------------------------------------

async function run_one(t) {
  const tl = Date.now();
  const b = await open_browser(t.device || DESKTOP);
  if (process.env.TIKETI_BROWSER_TIMING) console.log(`#   browser up in ${Date.now() - tl} ms`);
  let timer;
  try {
    const out = await Promise.race([
      t.fn(b),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${TEST_TIMEOUT_MS} ms`)), TEST_TIMEOUT_MS); }),
    ]);
    return { out, errors: b.console_errors };
  } catch (e) {
    const slug = t.name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60);
    try { await shot(b.page, `FAILED-${slug}.png`); } catch { /* page gone */ }
    e.page_errors = b.console_errors;
    throw e;
  } finally {
    clearTimeout(timer);
    const tc = Date.now();
    await b.context.close().catch(() => {});
    if (process.env.TIKETI_BROWSER_TIMING) console.log(`#   browser closed in ${Date.now() - tc} ms`);
    fs.rmSync(b.dir, { recursive: true, force: true });
  }
}

async function main() {
  if (!fs.existsSync(CHROMIUM)) {
    console.log(`# ${CHROMIUM} is missing (apt-get install chromium)`);
    console.log(`0 passed, ${tests.length} failed`);
    process.exit(1);
  }
  console.log(`# browser tests against ${BASE}${MOCK ? ' (mock API)' : ''}; screenshots in ${ARTIFACTS}`);
  let passed = 0, failed = 0, skipped = 0;
  for (const t of tests) {
    if (ONLY && !t.name.includes(ONLY)) continue;
    if (t.mock_only && !MOCK) { skipped++; console.log(`skip - ${t.name} (mock only)`); continue; }
    const t0 = Date.now();
    try {
      const { out, errors } = await run_one(t);
      passed++;
      console.log(`ok - ${t.name} (${Date.now() - t0} ms)${typeof out === 'string' ? ` -> ${out}` : ''}`);
      for (const e of errors) console.log(`#   page error: ${e}`);
    } catch (e) {
      if (e instanceof Skip) { skipped++; console.log(`skip - ${t.name}: ${e.message}`); continue; }
      failed++;
      console.log(`not ok - ${t.name} (${Date.now() - t0} ms)`);
      console.log(`#   ${String(e.stack || e).split('\n').slice(0, 6).join('\n#   ')}`);
      for (const pe of e.page_errors || []) console.log(`#   page error: ${pe}`);
    }
  }
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.log(`# ${e.stack || e}`);
  console.log('0 passed, 1 failed');
  process.exit(1);
});
