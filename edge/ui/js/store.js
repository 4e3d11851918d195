// store.js — what the UI remembers between pages, and the UI-wide helpers every page uses
// (navigation, announcements, the event cache, tunables).
//
// Kept in sessionStorage (this tab only, survives a reload, gone when the tab closes):
//   admission  event_id -> {token, at, expires_at}   the waiting room's admission token
//   holds      reservation_id -> {event_id, seat_ids, labels, amount, expires_at}
// Kept in memory: event details and seat labels, so pages can name seats without
// downloading a whole seat map again.

import { h, clear } from './util.js';
import * as api from './api.js';

export const options = Object.assign(
  { poll_ms: 5000, poll_ms_large: 15000, poll_ms_with_ws: 30000, queue_poll_ms: 2000 },
  globalThis.TIKETI_UI_OPTIONS || {},
);

function load(key) {
  try { return JSON.parse(sessionStorage.getItem(key) || '{}') || {}; } catch { return {}; }
}

function save(key, value) {
  try { sessionStorage.setItem(key, JSON.stringify(value)); } catch { /* memory only */ }
}

const admission = load('tiketi.admission');
const holds = load('tiketi.holds');

// An admission token past its admission_expires_at is dropped here rather than sent.
export function admission_for(event_id) {
  const a = admission[event_id];
  if (!a) return null;
  if (a.expires_at && Date.parse(a.expires_at) < Date.now()) {
    set_admission(event_id, null);
    return null;
  }
  return a;
}

export function set_admission(event_id, token, expires_at) {
  if (token) admission[event_id] = { token, at: Date.now(), expires_at: expires_at || null };
  else delete admission[event_id];
  save('tiketi.admission', admission);
}

export function hold_info(reservation_id) {
  return holds[reservation_id] || null;
}

export function remember_hold(reservation_id, info) {
  holds[reservation_id] = info;
  save('tiketi.holds', holds);
}

export function forget_hold(reservation_id) {
  delete holds[reservation_id];
  save('tiketi.holds', holds);
}

export function forget_session_state() {
  for (const k of Object.keys(admission)) delete admission[k];
  for (const k of Object.keys(holds)) delete holds[k];
  save('tiketi.admission', admission);
  save('tiketi.holds', holds);
}

// ---- event details and seat labels ---------------------------------------------------

const events = new Map();
const labels = new Map(); // event_id -> Map(seat_id -> label)

export function event_detail(event_id, { fresh = false } = {}) {
  if (!fresh && events.has(event_id)) return events.get(event_id);
  const p = api.get_event(event_id).catch((e) => { events.delete(event_id); throw e; });
  events.set(event_id, p);
  return p;
}

export function remember_labels(event_id, map) {
  const m = new Map();
  for (let i = 0; i < map.n; i++) m.set(map.ids[i], map.labels[i]);
  labels.set(event_id, m);
}

export function seat_label(event_id, seat_id) {
  const m = labels.get(event_id);
  return (m && m.get(String(seat_id))) || String(seat_id);
}

export function has_labels(event_id) {
  return labels.has(event_id);
}

// Small maps only: a page listing reservations may fetch labels for events up to this size.
export async function ensure_labels(event_id, capacity) {
  if (labels.has(event_id) || (capacity && capacity > 5000)) return;
  try {
    const r = await api.get_seats(event_id);
    const m = new Map();
    for (const s of (r.body && r.body.seats) || []) m.set(String(s.seat_id), s.label || `${s.section}-${s.row}-${s.number}`);
    labels.set(event_id, m);
  } catch { /* ids are shown instead */ }
}

// ---- navigation and announcements ------------------------------------------------------

export function navigate(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = hash;
}

export function login_hash(next) {
  return `#/login?next=${encodeURIComponent(next || location.hash || '#/events')}`;
}

let toast_timer = null;
// Polite announcement for screen readers plus a short visible toast.
export function announce(text, kind = 'info') {
  const region = document.getElementById('toast');
  if (!region) return;
  clear(region).appendChild(h('p', { class: `toast ${kind}`, text }));
  clearTimeout(toast_timer);
  toast_timer = setTimeout(() => clear(region), 6000);
}

export const EVENT_STATUS_WORDS = {
  scheduled: 'Sale not open yet',
  on_sale: 'On sale',
  closed: 'Sale closed',
  cancelled: 'Cancelled',
};

export const RESERVATION_STATUS_WORDS = {
  pending: 'Awaiting payment',
  confirmed: 'Confirmed',
  cancelled: 'Cancelled',
  expired: 'Expired',
};
