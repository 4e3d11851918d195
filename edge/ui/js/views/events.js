// views/events.js — the events list: search by name, filter by status, "load more" pages.

import { h, clear, when, spinner } from '../util.js';
import * as api from '../api.js';
import { error_box } from '../errors.js';
import { navigate, EVENT_STATUS_WORDS } from '../store.js';

export async function render_events(ctx) {
  const q = ctx.query.get('q') || '';
  const status = ctx.query.get('status') || '';
  const search = h('input', { id: 'event-search', type: 'search', name: 'q', value: q, placeholder: 'Artist, team or show', autocomplete: 'off' });
  const status_select = h('select', { id: 'event-status', name: 'status' },
    h('option', { value: '', text: 'Any status' }),
    ...Object.entries(EVENT_STATUS_WORDS).map(([value, text]) => h('option', { value, text, selected: value === status })));
  const form = h('form', { class: 'search-bar', role: 'search' },
    h('div', { class: 'field' }, h('label', { for: 'event-search', text: 'Search events' }), search),
    h('div', { class: 'field' }, h('label', { for: 'event-status', text: 'Status' }), status_select),
    h('button', { type: 'submit', text: 'Search' }));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const params = new URLSearchParams();
    if (search.value.trim()) params.set('q', search.value.trim());
    if (status_select.value) params.set('status', status_select.value);
    navigate(`#/events${params.toString() ? `?${params}` : ''}`);
  });
  const list = h('ul', { class: 'event-list', 'aria-label': 'Events' });
  const footer = h('div', { class: 'list-footer' });
  ctx.main.append(h('h1', { text: 'Events' }), form, list, footer);

  const load = async (cursor) => {
    clear(footer).appendChild(spinner('Loading events…'));
    try {
      const page = await api.list_events({ q, status, cursor });
      if (!ctx.alive()) return;
      clear(footer);
      const events = (page && page.events) || [];
      for (const ev of events) list.appendChild(event_card(ev));
      if (!list.children.length) {
        footer.appendChild(h('p', { class: 'empty', text: q || status ? 'No events match your search.' : 'No events yet. Check back soon.' }));
      }
      if (page && page.next_cursor) {
        footer.appendChild(h('button', { type: 'button', class: 'secondary', onclick: () => load(page.next_cursor), text: 'Load more events' }));
      }
    } catch (err) {
      if (!ctx.alive()) return;
      clear(footer).append(error_box(err, { what: 'the events' }), h('button', { type: 'button', onclick: () => load(cursor), text: 'Try again' }));
    }
  };
  await load('');
}

export function availability_words(ev) {
  const cap = Number(ev.capacity) || 0;
  const free = Number(ev.available);
  if (!cap || !Number.isFinite(free)) return '';
  if (free <= 0) return 'Sold out';
  if (free / cap < 0.1) return `Only ${free} of ${cap} seats left`;
  return `${free} of ${cap} seats available`;
}

function event_card(ev) {
  const status_text = EVENT_STATUS_WORDS[ev.status] || ev.status || '';
  return h('li', { class: 'card event-card' },
    h('h2', {}, h('a', { href: `#/events/${encodeURIComponent(ev.event_id)}`, text: ev.name })),
    h('p', { class: 'meta' }, ev.venue || '', ev.venue ? ' · ' : '', h('time', { datetime: ev.starts_at || '', text: when(ev.starts_at) })),
    h('p', { class: 'meta' },
      status_text ? h('span', { class: `badge status-${ev.status}`, text: status_text }) : null,
      ' ',
      h('span', { text: availability_words(ev) })),
    ev.status === 'scheduled' && ev.sale_opens_at ? h('p', { class: 'muted small', text: `Sale opens ${when(ev.sale_opens_at)}` }) : null);
}
