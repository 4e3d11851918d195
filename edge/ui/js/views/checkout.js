// views/checkout.js — pay for a pending hold with one of the gateway simulator's test cards.
//
// The Idempotency-Key is kept per (reservation, card) until the outcome is known: a retry
// after payment_unavailable or a lost connection reuses it, so the gateway never charges
// twice; a definitive answer (confirmed, declined, expired) forgets it.
//
// After payment_unavailable the charge is undecided, and reservation-svc keeps asking about
// that charge (same card, same key) until the gateway decides it: a second card would be
// ignored, so the form locks the card choice to the one in flight and says so.

import { h, clear, money, spinner, clock, when, uuid, cents_of } from '../util.js';
import * as api from '../api.js';
import { error_box, session_ended } from '../errors.js';
import {
  navigate, login_hash, announce, hold_info, forget_hold, event_detail,
  seat_label, ensure_labels,
} from '../store.js';

export const TEST_CARDS = [
  { token: 'tok_approve', name: 'Approved card', words: 'The payment goes through at once.' },
  { token: 'tok_decline', name: 'Declined card', words: 'The bank says no: nothing is charged and your seats are released.' },
  { token: 'tok_slow', name: 'Slow bank', words: 'Approved, but the bank takes about 5 seconds to answer.' },
  { token: 'tok_error', name: 'Broken gateway', words: 'The payment provider fails every time: the payment stays undecided, nothing is charged, and your seats stay held until the hold ends.' },
];

const keys = new Map(); // reservation_id -> {card, key}
const undecided = new Map(); // reservation_id -> card of a charge whose outcome is not known yet

export async function render_checkout(ctx) {
  const [rid] = ctx.params;
  const main = ctx.main;
  const loading = spinner('Loading your reservation…');
  main.append(h('h1', { text: 'Checkout' }), loading);

  let res;
  try {
    res = await api.get_reservation(rid);
  } catch (err) {
    if (!ctx.alive()) return;
    loading.replaceWith(error_box(err, { what: 'this reservation' }),
      session_ended(err) ? h('p', {}, h('a', { href: login_hash(location.hash), text: 'Log in again' }))
        : h('p', {}, h('a', { href: '#/reservations', text: 'See my reservations' })));
    return;
  }
  if (!ctx.alive()) return;
  loading.remove();
  const local = hold_info(rid) || {};
  const event_id = res.event_id || local.event_id;
  const seat_ids = (res.seat_ids || local.seat_ids || []).map(String);
  const amount = cents_of(res, 'amount') || local.amount || 0;
  const expires_at = res.expires_at || local.expires_at || null;
  let labels = local.labels && local.labels.length === seat_ids.length ? local.labels : null;
  if (!labels) {
    const body = await event_detail(event_id).catch(() => null);
    const ev = body && body.event ? body.event : body;
    await ensure_labels(event_id, ev ? Number(ev.capacity) || Infinity : Infinity);
    labels = seat_ids.map((id) => seat_label(event_id, id));
  }
  if (!ctx.alive()) return;
  const event_link = `#/events/${encodeURIComponent(event_id)}`;
  const event_name = h('span', { text: local.event_name || 'Event' });
  event_detail(event_id).then((ev) => {
    const e = ev && ev.event ? ev.event : ev;
    if (ctx.alive() && e && e.name) event_name.textContent = e.name;
  }).catch(() => {});

  const summary = h('section', { class: 'card summary', 'aria-labelledby': 'summary-title' },
    h('h2', { id: 'summary-title', text: 'Your order' }),
    h('p', {}, h('a', { href: event_link }, event_name)),
    h('ul', { class: 'seat-list', id: 'order-seats' }, labels.map((l) => h('li', { text: `Seat ${l}` }))),
    h('p', { class: 'total' }, 'Total ', h('strong', { id: 'order-total', text: money(amount) })),
    h('p', { class: 'muted small', text: `Reservation ${rid}` }));
  const result = h('div', { id: 'checkout-result', 'aria-live': 'polite' });
  main.append(summary, result);

  if (res.status && res.status !== 'pending') {
    show_final(res.status, res.payment_id);
    return;
  }

  // Hold countdown.
  const timer_el = h('p', { class: 'countdown', id: 'hold-timer', role: 'timer' });
  summary.insertBefore(timer_el, summary.children[1]);
  let expired = false;
  let paying = false;
  let interval = null;
  const expiry_ms = expires_at ? Date.parse(expires_at) : NaN;
  const tick = () => {
    if (!Number.isFinite(expiry_ms)) { timer_el.textContent = 'Your seats are held for a few minutes.'; return; }
    const left = (expiry_ms - Date.now()) / 1000;
    if (left <= 0) {
      clearInterval(interval);
      expired = true;
      timer_el.textContent = 'Your hold has expired.';
      if (!paying) {
        form.remove();
        clear(result).append(h('div', { class: 'alert error', role: 'alert', text: 'Your hold ran out, so the seats went back on sale. Nothing was charged.' }),
          h('p', {}, h('a', { class: 'button primary', href: event_link, text: 'Choose seats again' })));
      }
      return;
    }
    timer_el.textContent = `Your seats are held for ${clock(left)}.`;
    timer_el.classList.toggle('urgent', left < 60);
  };
  interval = setInterval(tick, 1000);
  ctx.defer(() => clearInterval(interval));

  // Card choice and pay.
  const radios = TEST_CARDS.map((c, n) => {
    const id = `card-${c.token}`;
    return h('div', { class: 'card-option' },
      h('input', { type: 'radio', name: 'card', id, value: c.token, checked: n === 0, 'aria-describedby': `${id}-words` }),
      h('label', { for: id }, h('strong', { text: c.name }), h('code', { text: c.token })),
      h('p', { class: 'hint', id: `${id}-words`, text: c.words }));
  });
  const pay_button = h('button', { type: 'submit', class: 'primary', id: 'pay', text: `Pay ${money(amount)}` });
  const release_button = h('button', { type: 'button', class: 'secondary', id: 'release', text: 'Release these seats' });
  const form = h('form', { class: 'card pay-form', 'aria-labelledby': 'pay-title' },
    h('h2', { id: 'pay-title', text: 'Payment' }),
    h('fieldset', {}, h('legend', { text: 'Test card (the payment simulator charges nothing real)' }), radios),
    h('p', { class: 'actions' }, pay_button, release_button));
  main.insertBefore(form, result);
  tick();
  const lock_note = h('p', { class: 'hint', id: 'card-locked', hidden: true });
  form.querySelector('fieldset').append(lock_note);
  const lock_card = (card) => {
    undecided.set(rid, card);
    const name = (TEST_CARDS.find((c) => c.token === card) || { name: card }).name;
    lock_note.textContent = `Your payment with "${name}" is not decided yet, so paying again asks about that `
      + 'same payment. You can choose another card once it is decided; you are never charged twice.';
    lock_note.hidden = false;
    for (const input of form.querySelectorAll('input[name="card"]')) input.checked = input.value === card;
    set_disabled(false);
  };
  if (undecided.has(rid)) lock_card(undecided.get(rid));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (paying || expired) return;
    const card = new FormData(form).get('card');
    let k = keys.get(rid);
    if (!k || k.card !== card) { k = { card, key: uuid() }; keys.set(rid, k); }
    paying = true;
    set_disabled(true);
    clear(result).appendChild(spinner(card === 'tok_slow'
      ? 'Waiting for the bank… this test card takes about 5 seconds.'
      : 'Processing your payment…'));
    try {
      const r = await api.pay(rid, card, k.key);
      keys.delete(rid);
      undecided.delete(rid);
      forget_hold(rid);
      if (!ctx.alive()) return;
      clearInterval(interval);
      form.remove();
      timer_el.remove();
      show_final(r.status || 'confirmed', r.payment_id);
    } catch (err) {
      if (!ctx.alive()) return;
      paying = false;
      const final = ['payment_declined', 'card_declined', 'payment_failed', 'hold_expired', 'gone', 'expired', 'reservation_not_pending'].includes(err.code);
      if (final || err.status === 402 || err.status === 410) {
        keys.delete(rid);
        undecided.delete(rid);
        forget_hold(rid);
        clearInterval(interval);
        form.remove();
        timer_el.remove();
        clear(result).append(error_box(err), h('p', { class: 'actions' },
          h('a', { class: 'button primary', href: event_link, text: 'Choose seats again' }),
          h('a', { class: 'button secondary', href: '#/reservations', text: 'My reservations' })));
        return;
      }
      if (err.code === 'payment_unavailable') lock_card(card);
      else set_disabled(false);
      if (session_ended(err)) {
        clear(result).append(error_box(err), h('p', {}, h('a', { href: login_hash(location.hash), text: 'Log in again' })));
        return;
      }
      const until = Number.isFinite(expiry_ms) ? new Date(expiry_ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : null;
      clear(result).appendChild(error_box(err, { paying: true, expires: until }));
      if (err.code === 'rate_limited' && err.retry_after_s) {
        pay_button.disabled = true;
        setTimeout(() => { if (pay_button.isConnected) pay_button.disabled = false; }, err.retry_after_s * 1000);
      }
    }
  });

  release_button.addEventListener('click', async () => {
    set_disabled(true);
    clear(result).appendChild(spinner('Releasing your seats…'));
    try {
      await api.release_reservation(rid);
      forget_hold(rid);
      keys.delete(rid);
      announce('Your seats were released.');
      navigate(event_link);
    } catch (err) {
      if (!ctx.alive()) return;
      set_disabled(false);
      clear(result).appendChild(error_box(err));
    }
  });

  function set_disabled(on) {
    const locked = undecided.get(rid);
    for (const el of form.querySelectorAll('input, button')) {
      el.disabled = on || (locked !== undefined && el.name === 'card' && el.value !== locked);
    }
  }

  function show_final(status, payment_id) {
    if (status === 'confirmed') {
      clear(result).append(h('div', { class: 'alert success', role: 'status', id: 'confirmed' },
        h('h2', { text: 'Confirmed!' }),
        h('p', { text: `Your tickets are confirmed. Booking reference ${rid}${payment_id ? `, payment ${payment_id}` : ''}.` }),
        h('p', { class: 'muted small', text: `Status: confirmed · ${when(new Date().toISOString())}` })),
      h('p', { class: 'actions' },
        h('a', { class: 'button primary', href: '#/reservations', text: 'My reservations' }),
        h('a', { class: 'button secondary', href: '#/events', text: 'More events' })));
      announce('Payment approved. Your tickets are confirmed.');
      const title = result.querySelector('h2');
      if (title) { title.setAttribute('tabindex', '-1'); title.focus(); }
      return;
    }
    const words = {
      cancelled: 'This reservation was cancelled and refunded.',
      expired: 'This hold expired before it was paid, so the seats went back on sale.',
    };
    clear(result).append(h('div', { class: 'alert info', role: 'status', text: words[status] || `This reservation is ${status}.` }),
      h('p', { class: 'actions' }, h('a', { class: 'button primary', href: event_link, text: 'Back to the event' })));
  }
}
