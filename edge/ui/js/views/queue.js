// views/queue.js — the waiting room. POST /queue joins (idempotent, so a reload keeps the
// place); the WebSocket pushes {"type":"position"} at least once a second and finally
// {"type":"admitted","admission_token"}; while the socket is down GET /queue is polled
// (it also counts as the heartbeat that keeps the place). Admitted -> back to the event
// page, which now shows seat selection.

import { h, clear, spinner, duration_words } from '../util.js';
import * as api from '../api.js';
import { error_box, session_ended } from '../errors.js';
import { open_queue_socket } from '../live.js';
import { navigate, login_hash, announce, options, event_detail, set_admission, admission_for } from '../store.js';

export async function render_queue(ctx) {
  const [event_id] = ctx.params;
  const event_hash = `#/events/${encodeURIComponent(event_id)}`;
  const main = ctx.main;
  const title = h('p', { class: 'meta', id: 'queue-event' });
  const body = h('div', { class: 'queue-card card', id: 'queue-card' }, spinner('Joining the waiting room…'));
  main.append(h('p', {}, h('a', { href: event_hash, class: 'back', text: '← Back to the event' })), h('h1', { text: 'Waiting room' }), title, body);
  event_detail(event_id).then((ev) => {
    const e = ev && ev.event ? ev.event : ev;
    if (ctx.alive() && e) title.textContent = e.name || '';
  }).catch(() => {});

  if (admission_for(event_id)) { navigate(event_hash); return; }

  let first_position = null;
  let done = false;
  let socket = null;
  let poll_timer = null;
  const position_el = h('strong', { class: 'position', id: 'queue-position', text: '…' });
  const eta_el = h('span', { id: 'queue-eta', text: '…' });
  const progress = h('progress', { id: 'queue-progress', max: '100', value: '0', 'aria-label': 'Progress through the line' });
  const ticket_el = h('span', { id: 'queue-ticket' });
  const socket_note = h('p', { class: 'muted small', id: 'queue-live' });

  const stop = () => {
    done = true;
    clearTimeout(poll_timer);
    if (socket) socket.close();
  };
  ctx.defer(stop);

  const admitted = (token, expires_at) => {
    if (done) return;
    stop();
    set_admission(event_id, token, expires_at);
    announce("It's your turn! Choose your seats now.");
    navigate(event_hash);
  };

  const show = (view) => {
    if (done || !ctx.alive()) return;
    if (view.status === 'admitted' && view.admission_token) { admitted(view.admission_token, view.admission_expires_at || view.expires_at); return; }
    if (view.status === 'left' || view.status === 'expired') { ended(view.status); return; }
    update(view.position, view.eta_s);
    if (view.ticket) ticket_el.textContent = `Your ticket number: ${view.ticket}.`;
  };

  const update = (position, eta_s) => {
    const pos = Math.max(1, Number(position) || 1);
    if (first_position === null || pos > first_position) first_position = pos;
    position_el.textContent = String(pos);
    eta_el.textContent = pos === 1 ? "You're next." : `Estimated wait: ${duration_words(eta_s)}.`;
    progress.value = first_position > 1 ? Math.round(100 * (first_position - pos) / (first_position - 1)) : 100;
    progress.textContent = `${progress.value}%`;
  };

  const ended = (status) => {
    stop();
    clear(body).append(
      h('p', { class: 'alert info', role: 'status', text: status === 'expired' ? 'Your place in the waiting room expired (the page was closed or lost its connection for too long).' : 'You left the waiting room.' }),
      h('button', { type: 'button', class: 'primary', onclick: () => navigate(`${event_hash}/queue?again=${Date.now()}`), text: 'Join again' }));
  };

  const fail = (err) => {
    stop();
    if (!ctx.alive()) return;
    clear(body).append(error_box(err, { what: 'this waiting room' }),
      session_ended(err) ? h('p', {}, h('a', { href: login_hash(location.hash), text: 'Log in again' }))
        : h('button', { type: 'button', onclick: () => navigate(`${event_hash}/queue?again=${Date.now()}`), text: 'Try again' }));
  };

  // Polling while the socket is down (also the heartbeat for the place in line).
  const poll = async () => {
    if (done || !ctx.alive()) return;
    if (!(socket && socket.is_open())) {
      try { show(await api.queue_status(event_id)); } catch (err) {
        if (err.status === 401 || err.status === 404 || err.code === 'not_found') { fail(err); return; }
      }
    }
    if (!done) poll_timer = setTimeout(poll, options.queue_poll_ms);
  };

  let view;
  try {
    view = await api.join_queue(event_id);
  } catch (err) {
    fail(err);
    return;
  }
  if (!ctx.alive()) return;
  clear(body).append(
    h('p', { class: 'label', text: 'Your place in line' }), position_el,
    h('p', { 'aria-live': 'polite' }, eta_el), progress,
    h('p', {}, "Keep this page open: when it's your turn you go straight to seat selection. ", ticket_el),
    socket_note,
    h('button', { type: 'button', class: 'secondary', id: 'leave-queue', onclick: leave, text: 'Leave the waiting room' }));
  show(view);
  if (done) return;

  socket = open_queue_socket(event_id, {
    on_up: () => { socket_note.textContent = 'Live updates on.'; },
    on_down: () => { socket_note.textContent = 'Checking your place every few seconds (live connection unavailable). Your place is kept.'; },
    on_message: (msg) => {
      if (msg.type === 'position') update(msg.position, msg.eta_s);
      else if (msg.type === 'admitted' && msg.admission_token) admitted(msg.admission_token, msg.expires_at || msg.admission_expires_at);
      else if (msg.type === 'left' || msg.type === 'expired') ended(msg.type);
    },
  });
  poll_timer = setTimeout(poll, options.queue_poll_ms);

  async function leave(e) {
    e.target.disabled = true;
    try {
      await api.leave_queue(event_id);
      stop();
      announce('You left the waiting room.');
      navigate(event_hash);
    } catch (err) {
      e.target.disabled = false;
      body.appendChild(error_box(err));
    }
  }
}
