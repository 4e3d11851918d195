// views/event.js — one event: details, the live seat map, and the "your tickets" panel.
//
// Panel states: not logged in -> log in; logged in without admission -> "Choose seats"
// (no waiting room: POST /queue admits at once) or "Join the waiting room" (goes to
// #/events/{id}/queue); admitted -> pick seats on the map (up to the per-user cap) or
// best available N in a section, then POST /holds -> #/checkout/{reservation_id}.
// Live: seat deltas from the queue WebSocket once admitted; ETag polling always (fast
// while the socket is down, slow as a safety net while it is up).

import { h, clear, when, money, spinner, plural, clock, cents_of } from '../util.js';
import * as api from '../api.js';
import { error_box, session_ended } from '../errors.js';
import { SeatMap, SVG_MAX_SEATS } from '../seatmap.js';
import { open_queue_socket, poll_seats } from '../live.js';
import {
  navigate, login_hash, announce, options, event_detail, admission_for, set_admission,
  remember_labels, remember_hold, EVENT_STATUS_WORDS,
} from '../store.js';
import { availability_words } from './events.js';

export async function render_event(ctx) {
  const [event_id] = ctx.params;
  const main = ctx.main;
  const loading = spinner('Loading the event…');
  main.append(h('p', {}, h('a', { href: '#/events', class: 'back', text: '← All events' })), h('h1', { text: 'Event' }), loading);

  let ev, seats;
  try {
    [ev, seats] = await Promise.all([event_detail(event_id, { fresh: true }), api.get_seats(event_id)]);
  } catch (err) {
    if (!ctx.alive()) return;
    loading.replaceWith(error_box(err, { what: 'this event' }), h('p', {}, h('a', { href: '#/events', text: 'Back to all events' })));
    return;
  }
  if (!ctx.alive()) return;
  const page = new EventPage(ctx, normalise_event(ev), seats);
  loading.remove();
  page.mount();
}

// GET /events/{id} may nest the summary under `event` (the gRPC shape) or flatten it.
function normalise_event(body) {
  const base = body && body.event ? { ...body, ...body.event } : { ...(body || {}) };
  base.sections = base.sections || [];
  base.queue = base.queue || { enabled: false };
  base.max_seats_per_user = Number(base.max_seats_per_user) || 10;
  return base;
}

class EventPage {
  constructor(ctx, ev, seats) {
    this.ctx = ctx;
    this.ev = ev;
    this.id = ev.event_id || ctx.params[0];
    this.etag = seats.etag;
    this.seats_payload = seats.body;
    this.socket = null;
    this.busy = false;
  }

  get admission() { return admission_for(this.id); }
  get cap() { return this.ev.max_seats_per_user; }

  mount() {
    const { ctx, ev } = this;
    ctx.set_title(ev.name || 'Event');
    const h1 = ctx.main.querySelector('h1');
    h1.textContent = ev.name || 'Event';
    const status_text = EVENT_STATUS_WORDS[ev.status] || ev.status || '';
    this.availability = h('span', { id: 'availability', text: availability_words(ev) });
    ctx.main.append(
      h('p', { class: 'meta' }, ev.venue || '', ev.venue ? ' · ' : '', h('time', { datetime: ev.starts_at || '', text: when(ev.starts_at) })),
      h('p', { class: 'meta' }, status_text ? h('span', { class: `badge status-${ev.status}`, text: status_text }) : null, ' ', this.availability),
    );
    this.map_host = h('div', { class: 'seatmap', id: 'seatmap' });
    this.live_note = h('span', { class: 'live-note muted small', id: 'live-note', text: 'Updates every few seconds' });
    const zoom = (f) => () => this.map.zoom(f);
    const map_panel = h('section', { class: 'map-panel', 'aria-labelledby': 'map-title' },
      h('div', { class: 'map-head' },
        h('h2', { id: 'map-title', text: 'Seat map' }),
        h('div', { class: 'zoom', role: 'group', 'aria-label': 'Zoom' },
          h('button', { type: 'button', class: 'icon', onclick: zoom(0.8), 'aria-label': 'Zoom out', text: '−' }),
          h('button', { type: 'button', class: 'icon', onclick: zoom(1.25), 'aria-label': 'Zoom in', text: '+' }))),
      legend(),
      this.map_host,
      h('p', { class: 'map-foot' }, this.live_note));
    this.panel = h('aside', { class: 'buy-panel card', 'aria-labelledby': 'panel-title' });
    ctx.main.appendChild(h('div', { class: 'event-layout' }, map_panel, this.panel));

    const mode = new URLSearchParams(location.search).get('map');
    this.map = new SeatMap(this.map_host, {
      mode: mode === 'svg' || mode === 'canvas' ? mode : null,
      on_toggle: (seat) => this.toggle(seat),
      on_lost: (lost) => this.lost(lost),
    });
    this.map.load(this.seats_payload);
    this.seats_payload = null; // the map holds what it needs
    remember_labels(this.id, this.map);
    this.update_counts();
    this.render_panel();

    this.poller = poll_seats(this.id, {
      etag: this.etag,
      alive: ctx.alive,
      interval_ms: () => this.poll_interval(),
      on_payload: (body) => { this.map.replace(body); remember_labels(this.id, this.map); this.update_counts(); this.render_selection(); },
    });
    ctx.defer(() => this.poller.stop());
    ctx.defer(() => { if (this.socket) this.socket.close(); });
    ctx.defer(() => this.map.destroy());
    ctx.defer(() => clearInterval(this.turn_timer));
    if (this.admission) this.open_socket();
  }

  poll_interval() {
    if (this.socket && this.socket.is_open()) return options.poll_ms_with_ws;
    return this.map.n > SVG_MAX_SEATS ? options.poll_ms_large : options.poll_ms;
  }

  // Seat deltas flow on the waiting-room socket once admitted.
  open_socket() {
    if (this.socket) return;
    this.socket = open_queue_socket(this.id, {
      on_up: () => { this.live_note.textContent = 'Live'; this.live_note.classList.add('on'); },
      on_down: () => { this.live_note.textContent = 'Updates every few seconds'; this.live_note.classList.remove('on'); },
      on_message: (msg) => {
        if (msg.type === 'seats') {
          // resync: too many changes for one message; from_version newer than our map:
          // changes were missed. Either way the ETag refetch brings the map up to date.
          const missed = this.map.apply_changes(msg.version, msg.changed || [], msg.from_version);
          if (msg.resync || missed) this.poller.now();
          this.update_counts();
          this.render_selection();
        } else if (msg.type === 'admitted' && msg.admission_token) {
          set_admission(this.id, msg.admission_token, msg.expires_at || msg.admission_expires_at);
        } else if (msg.type === 'expired' || msg.type === 'left') {
          // The server ends this socket; reconnecting would join the line again.
          this.socket.close();
          this.socket = null;
          this.live_note.textContent = 'Updates every few seconds';
          this.live_note.classList.remove('on');
          if (msg.type === 'expired') {
            set_admission(this.id, null);
            this.render_panel();
            this.notice.appendChild(h('div', { class: 'alert error', role: 'alert', text: 'Your turn to choose seats has ended. Join again to get a new turn.' }));
          }
        }
      },
    });
  }

  update_counts() {
    const free = this.map.free_count();
    this.ev.available = free;
    this.ev.capacity = this.ev.capacity || this.map.n;
    this.availability.textContent = availability_words(this.ev);
    if (this.section_select) {
      for (const opt of this.section_select.options) {
        if (!opt.value) continue;
        const s = this.map.sections.find((x) => x.name === opt.value);
        if (s) opt.textContent = section_option_text(s);
      }
    }
  }

  // ---- the panel -----------------------------------------------------------------------

  render_panel() {
    const p = clear(this.panel);
    this.notice = h('div', { class: 'notice', id: 'panel-notice' });
    p.append(h('h2', { id: 'panel-title', text: 'Your tickets' }), this.notice);
    this.section_select = null;
    clearInterval(this.turn_timer);
    const { ev } = this;
    if (ev.status === 'closed' || ev.status === 'cancelled') {
      p.appendChild(h('p', { text: ev.status === 'closed' ? 'The sale for this event has closed.' : 'This event was cancelled.' }));
      return;
    }
    const opens = Date.parse(ev.sale_opens_at || '');
    if (Number.isFinite(opens) && opens > Date.now()) {
      p.appendChild(h('p', { text: `Tickets go on sale ${when(ev.sale_opens_at)}. Come back then (reload this page).` }));
      return;
    }
    if (!api.logged_in()) {
      p.append(
        h('p', { text: 'Log in or create an account to choose seats.' }),
        h('p', { class: 'actions' },
          h('a', { class: 'button primary', href: login_hash(location.hash), text: 'Log in' }),
          h('a', { class: 'button secondary', href: `#/signup?next=${encodeURIComponent(location.hash)}`, text: 'Sign up' })));
      return;
    }
    if (!this.admission) {
      const queued = Boolean(ev.queue && ev.queue.enabled);
      p.appendChild(h('p', {
        text: queued
          ? 'This sale has a waiting room. Join it to get your place in line; you choose seats when it is your turn.'
          : 'Seats are first come, first served. Press the button, then pick seats on the map or let us find the best ones.',
      }));
      const button = h('button', { type: 'button', class: 'primary', id: 'get-tickets', text: queued ? 'Join the waiting room' : 'Choose seats' });
      button.addEventListener('click', () => this.get_tickets(button));
      p.appendChild(button);
      return;
    }
    this.render_admitted(p);
  }

  render_admitted(p) {
    const turn = h('p', { class: 'turn', id: 'turn' }, "It's your turn: choose seats on the map, or let us pick the best available.");
    p.appendChild(turn);
    const expires = this.admission.expires_at ? Date.parse(this.admission.expires_at) : NaN;
    if (Number.isFinite(expires)) {
      const left = h('p', { class: 'muted small', role: 'timer' });
      p.appendChild(left);
      const tick = () => {
        const s = (expires - Date.now()) / 1000;
        if (s <= 0) {
          clearInterval(this.turn_timer);
          set_admission(this.id, null);
          this.render_panel();
          this.notice.appendChild(h('div', { class: 'alert error', role: 'alert', text: 'Your turn to choose seats has ended. Join again to get a new turn.' }));
          return;
        }
        left.textContent = `Your turn ends in ${clock(s)}.`;
      };
      tick();
      this.turn_timer = setInterval(tick, 1000);
    }
    this.selection_box = h('div', { class: 'selection', id: 'selection' });
    p.appendChild(this.selection_box);
    this.render_selection();
    p.appendChild(this.best_form());
  }

  render_selection() {
    if (!this.selection_box || !this.selection_box.isConnected) return;
    const box = clear(this.selection_box);
    const ids = this.map.selected_ids();
    box.appendChild(h('h3', { id: 'selection-title', text: `Selected seats (${ids.length} of max ${this.cap})` }));
    if (!ids.length) {
      box.appendChild(h('p', { class: 'muted', text: 'None yet. Click or tap free seats on the map (keyboard: focus the map, arrow keys, Enter).' }));
      return;
    }
    const list = h('ul', { class: 'seat-list', 'aria-labelledby': 'selection-title' });
    let total = 0;
    for (const id of ids) {
      const i = this.map.index_of(id);
      const seat = this.map.seat(i);
      total += seat.price;
      list.appendChild(h('li', {},
        h('span', { text: `${seat.label} · ${money(seat.price)}` }),
        h('button', {
          type: 'button', class: 'link-button', 'aria-label': `Remove seat ${seat.label}`,
          onclick: () => { this.map.set_selected(i, false); this.render_selection(); },
        }, 'Remove')));
    }
    const hold = h('button', { type: 'button', class: 'primary', id: 'hold-selected', text: `Hold ${plural(ids.length, 'seat', 'seats')} · ${money(total)}` });
    hold.addEventListener('click', () => this.hold({ seat_ids: ids }, hold));
    box.append(list,
      h('p', { class: 'actions' }, hold,
        h('button', { type: 'button', class: 'secondary', onclick: () => { this.map.clear_selection(); this.render_selection(); }, text: 'Clear' })));
  }

  best_form() {
    const count = h('input', { id: 'best-count', type: 'number', min: '1', max: String(this.cap), value: '2', inputmode: 'numeric', required: true });
    this.section_select = h('select', { id: 'best-section' },
      h('option', { value: '', text: 'Any section' }),
      ...this.map.sections.map((s) => h('option', { value: s.name, text: section_option_text(s) })));
    const button = h('button', { type: 'submit', id: 'hold-best', text: 'Hold best available' });
    const form = h('form', { class: 'best', 'aria-labelledby': 'best-title' },
      h('h3', { id: 'best-title', text: 'Or: best available' }),
      h('div', { class: 'row' },
        h('div', { class: 'field' }, h('label', { for: 'best-count', text: 'Seats' }), count),
        h('div', { class: 'field grow' }, h('label', { for: 'best-section', text: 'Section' }), this.section_select)),
      h('p', { class: 'hint', text: 'We hold seats next to each other when we can.' }),
      button);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (!form.reportValidity()) return;
      const body = { count: Number(count.value) };
      if (this.section_select.value) body.section = this.section_select.value;
      this.hold(body, button);
    });
    return form;
  }

  // ---- actions ---------------------------------------------------------------------------

  show_error(err, extra = {}) {
    if (session_ended(err)) {
      clear(this.notice).append(error_box(err), h('p', {}, h('a', { href: login_hash(location.hash), text: 'Log in again' })));
      return;
    }
    clear(this.notice).appendChild(error_box(err, {
      cap: this.cap, label: (id) => this.map.label_of(id), ...extra,
    }, () => this.render_selection()));
    this.notice.scrollIntoView({ block: 'nearest' });
  }

  async get_tickets(button) {
    button.disabled = true;
    clear(this.notice).appendChild(spinner('Getting your place…'));
    try {
      const view = await api.join_queue(this.id);
      if (!this.ctx.alive()) return;
      if (view.status === 'admitted' && view.admission_token) {
        set_admission(this.id, view.admission_token, view.admission_expires_at);
        this.render_panel();
        this.open_socket();
        announce("You're in. Choose your seats.");
        this.map.scroller.focus({ preventScroll: true });
      } else {
        navigate(`#/events/${encodeURIComponent(this.id)}/queue`);
      }
    } catch (err) {
      if (!this.ctx.alive()) return;
      button.disabled = false;
      clear(this.notice);
      this.show_error(err);
    }
  }

  toggle(seat) {
    if (!api.logged_in()) { this.hint('Log in first to choose seats.'); return; }
    const adm = this.admission;
    if (!adm) {
      this.hint(this.ev.queue && this.ev.queue.enabled ? 'Join the waiting room first; you can choose seats when it is your turn.' : 'Press “Choose seats” first.');
      return;
    }
    const i = seat.index;
    if (this.map.selected[i]) {
      this.map.set_selected(i, false);
      announce(`Seat ${seat.label} removed from your selection.`);
    } else if (seat.status !== 'free') {
      announce(`Seat ${seat.label} is ${seat.status === 'held' ? 'held by someone else' : 'sold'}.`, 'warn');
      return;
    } else if (this.map.selected_ids().length >= this.cap) {
      announce(`You can choose at most ${plural(this.cap, 'seat', 'seats')} for this event.`, 'warn');
      return;
    } else {
      this.map.set_selected(i, true);
      announce(`Seat ${seat.label} selected, ${money(seat.price)}.`);
    }
    this.render_selection();
  }

  hint(text) {
    clear(this.notice).appendChild(h('p', { class: 'alert info', role: 'status', text }));
  }

  lost(seats) {
    const labels = seats.map((s) => s.label);
    announce(`${labels.join(', ')} ${labels.length === 1 ? 'was' : 'were'} just taken by someone else and removed from your selection.`, 'warn');
  }

  async hold(body, button) {
    if (this.busy) return;
    const adm = this.admission;
    if (!adm) { this.render_panel(); return; }
    this.busy = true;
    button.disabled = true;
    clear(this.notice).appendChild(spinner('Holding your seats…'));
    try {
      const r = await api.hold_seats(this.id, adm.token, body);
      if (!this.ctx.alive()) return;
      const seat_ids = (r.seat_ids || body.seat_ids || []).map(String);
      remember_hold(r.reservation_id, {
        event_id: this.id, event_name: this.ev.name, seat_ids,
        labels: seat_ids.map((id) => this.map.label_of(id)),
        amount: cents_of(r, 'amount'), expires_at: r.expires_at || null,
      });
      this.map.clear_selection();
      navigate(`#/checkout/${encodeURIComponent(r.reservation_id)}`);
    } catch (err) {
      if (!this.ctx.alive()) return;
      if (err.code === 'seat_unavailable' && err.unavailable.length) {
        this.map.flag_unavailable(err.unavailable);
        this.update_counts();
      }
      if (err.code === 'not_admitted') {
        set_admission(this.id, null);
        this.render_panel();
      } else {
        this.render_selection();
      }
      this.show_error(err, { section: body.section });
      if (err.code === 'seat_unavailable' || err.code === 'sold_out') this.poller.now();
    } finally {
      this.busy = false;
      if (button.isConnected) button.disabled = false;
    }
  }
}

function section_option_text(s) {
  const price = Number.isFinite(s.min_price) ? ` · from ${money(s.min_price)}` : '';
  return `${s.name}${price} · ${s.free} free`;
}

function legend() {
  const item = (cls, text) => h('li', {}, h('span', { class: `swatch ${cls}`, 'aria-hidden': 'true' }), text);
  return h('ul', { class: 'legend', 'aria-label': 'Legend' },
    item('s-free', 'Free'), item('selected', 'Your selection'), item('s-held', 'Held'), item('s-sold', 'Sold'), item('flagged', 'Just taken'));
}
