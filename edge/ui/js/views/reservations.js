// views/reservations.js — my reservations, newest first: status, amount, seats, and the
// action each status allows: pending -> pay or release; confirmed -> cancel with refund
// (asked for confirmation inline, no browser dialog).

import { h, clear, when, money, spinner, cents_of } from '../util.js';
import * as api from '../api.js';
import { error_box, session_ended } from '../errors.js';
import { login_hash, announce, event_detail, ensure_labels, seat_label, forget_hold, RESERVATION_STATUS_WORDS } from '../store.js';

export async function render_reservations(ctx) {
  const main = ctx.main;
  const list = h('ul', { class: 'reservation-list', id: 'reservations', 'aria-label': 'My reservations' });
  const status = h('div', {}, spinner('Loading your reservations…'));
  main.append(h('h1', { text: 'My reservations' }), status, list);

  let items;
  try {
    items = await api.list_reservations();
  } catch (err) {
    if (!ctx.alive()) return;
    clear(status).append(error_box(err),
      session_ended(err) ? h('p', {}, h('a', { href: login_hash(location.hash), text: 'Log in again' })) : null);
    return;
  }
  if (!ctx.alive()) return;
  clear(status);
  if (!items.length) {
    status.appendChild(h('p', { class: 'empty' }, "You don't have any reservations yet. ", h('a', { href: '#/events', text: 'Find an event' })));
    return;
  }
  items.sort((a, b) => String(b.created_at || '').localeCompare(String(a.created_at || '')));

  // Event names and seat labels, fetched once per event.
  const event_ids = [...new Set(items.map((r) => String(r.event_id)))];
  const events = new Map();
  await Promise.all(event_ids.map(async (id) => {
    try {
      const body = await event_detail(id);
      const ev = body && body.event ? { ...body, ...body.event } : body;
      events.set(id, ev);
      await ensure_labels(id, ev ? Number(ev.capacity) || Infinity : Infinity);
    } catch { /* the id is shown instead */ }
  }));
  if (!ctx.alive()) return;
  for (const r of items) list.appendChild(reservation_item(r, events.get(String(r.event_id))));
}

function reservation_item(r, ev) {
  const rid = r.reservation_id;
  const actions = h('div', { class: 'actions' });
  const note = h('div', { class: 'item-note' });
  const badge = h('span', { class: `badge res-${r.status}`, text: RESERVATION_STATUS_WORDS[r.status] || r.status });
  const li = h('li', { class: 'card reservation', dataset: { reservation: rid, status: r.status } },
    h('h2', {}, h('a', { href: `#/events/${encodeURIComponent(r.event_id)}`, text: (ev && ev.name) || `Event ${r.event_id}` })),
    h('p', { class: 'meta' }, badge, ' ', h('strong', { class: 'amount', text: money(cents_of(r, 'amount')) }),
      r.created_at ? ` · booked ${when(r.created_at)}` : ''),
    ev && ev.starts_at ? h('p', { class: 'muted small', text: `${ev.venue || ''}${ev.venue ? ' · ' : ''}${when(ev.starts_at)}` }) : null,
    h('p', { class: 'seats' }, 'Seats: ', (r.seat_ids || []).map((id) => seat_label(String(r.event_id), id)).join(', ') || '—'),
    actions, note);

  const set_status = (s) => {
    r.status = s;
    li.dataset.status = s;
    badge.className = `badge res-${s}`;
    badge.textContent = RESERVATION_STATUS_WORDS[s] || s;
    clear(actions);
    fill_actions();
  };

  const fill_actions = () => {
    if (r.status === 'pending') {
      const release = h('button', { type: 'button', class: 'secondary', text: 'Release seats' });
      release.addEventListener('click', async () => {
        release.disabled = true;
        clear(note).appendChild(spinner('Releasing…'));
        try {
          await api.release_reservation(rid);
          forget_hold(rid);
          clear(note);
          set_status('cancelled');
          announce('The seats were released.');
        } catch (err) {
          release.disabled = false;
          clear(note).appendChild(error_box(err));
        }
      });
      actions.append(h('a', { class: 'button primary', href: `#/checkout/${encodeURIComponent(rid)}`, text: 'Pay now' }), release);
    } else if (r.status === 'confirmed') {
      const cancel = h('button', { type: 'button', class: 'secondary danger', text: 'Cancel booking' });
      cancel.addEventListener('click', () => confirm_cancel(cancel));
      actions.appendChild(cancel);
    }
  };

  const confirm_cancel = (opener) => {
    opener.hidden = true;
    const yes = h('button', { type: 'button', class: 'danger', text: 'Yes, cancel and refund' });
    const no = h('button', { type: 'button', class: 'secondary', text: 'Keep my tickets' });
    const box = h('div', { class: 'confirm', role: 'group', 'aria-label': 'Confirm cancellation' },
      h('p', { text: `Cancel this booking? ${money(cents_of(r, 'amount'))} is refunded to your card and the seats go back on sale.` }), yes, no);
    clear(note).appendChild(box);
    yes.focus();
    no.addEventListener('click', () => { clear(note); opener.hidden = false; opener.focus(); });
    yes.addEventListener('click', async () => {
      yes.disabled = true;
      no.disabled = true;
      clear(note).appendChild(spinner('Cancelling and refunding…'));
      try {
        const res = await api.cancel_reservation(rid);
        clear(note).appendChild(h('p', { class: 'alert success', role: 'status', text: 'Cancelled. The refund is on its way to your card.' }));
        set_status((res && res.status) || 'cancelled');
      } catch (err) {
        opener.hidden = false;
        clear(note).appendChild(error_box(err));
      }
    });
  };

  fill_actions();
  return li;
}
