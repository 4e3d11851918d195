// util.js — small DOM and formatting helpers shared by every page.
// DOM is built with h() (textContent, never innerHTML) so that names coming from
// the API can never inject markup.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// Prices and amounts travel as integer cents (the engine's price_cents, amount_cents).
// A payload field named *_cents wins; otherwise `price` / `amount` are read as cents.
export const CURRENCY = 'EUR';
const money_format = new Intl.NumberFormat('en-IE', { style: 'currency', currency: CURRENCY });

export function cents_of(obj, field) {
  if (!obj) return 0;
  const explicit = obj[field + '_cents'];
  if (typeof explicit === 'number') return explicit;
  const value = obj[field];
  return typeof value === 'number' ? value : Number(value) || 0;
}

export function money(cents) {
  return money_format.format((Number(cents) || 0) / 100);
}

const date_format = new Intl.DateTimeFormat(undefined, {
  weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit',
});

export function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : date_format.format(d);
}

export function duration_words(seconds) {
  const s = Math.max(0, Math.round(Number(seconds) || 0));
  if (s < 60) return s <= 5 ? 'a few seconds' : `about ${s} seconds`;
  const m = Math.round(s / 60);
  if (m < 60) return m === 1 ? 'about a minute' : `about ${m} minutes`;
  const hours = Math.floor(m / 60), rest = m % 60;
  return `about ${hours} h ${rest} min`;
}

export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

// crypto.randomUUID exists only in secure contexts (https, localhost); the edge may be
// reached over plain http on another host, so fall back to getRandomValues.
export function uuid() {
  if (globalThis.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// A spinner with text for screen readers (role=status is announced politely).
export function spinner(text) {
  return h('div', { class: 'busy', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('span', { text }));
}
