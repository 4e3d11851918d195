// live.js — the two ways the UI hears about changes.
//
// open_queue_socket: the waiting room WebSocket (/events/{id}/queue/ws?access_token=...). It
//   carries position/ETA while waiting, the admission, then seat deltas. It reconnects with
//   backoff (1 s, 2 s, 4 s ... 30 s), taking a fresh access token each time, and tells the
//   page when it is up or down so the page can fall back to polling meanwhile.
// poll_seats: GET /seats with If-None-Match every few seconds; a 304 costs nothing, a 200
//   replaces the map (as a diff when the layout is the same). It is the fallback when the
//   socket is down and a slow safety net when it is up (a missed delta heals itself).

import * as api from './api.js';

export function open_queue_socket(event_id, handlers = {}) {
  let ws = null;
  let closed = false;
  let attempts = 0;
  let timer = null;

  const schedule = () => {
    attempts += 1;
    const delay = Math.min(30000, 1000 * 2 ** Math.min(attempts - 1, 5));
    timer = setTimeout(connect, delay);
  };

  async function connect() {
    if (closed) return;
    let url;
    try { url = await api.queue_ws_url(event_id); } catch { schedule(); return; }
    if (closed) return;
    try { ws = new WebSocket(url); } catch { schedule(); return; }
    ws.onopen = () => { attempts = 0; if (handlers.on_up) handlers.on_up(); };
    ws.onmessage = (m) => {
      let msg;
      try { msg = JSON.parse(m.data); } catch { return; }
      if (msg && handlers.on_message) handlers.on_message(msg);
    };
    ws.onclose = (ev) => {
      ws = null;
      if (closed) return;
      if (handlers.on_down) handlers.on_down(ev);
      schedule();
    };
    ws.onerror = () => { /* a close event follows */ };
  }

  connect();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      if (ws) { try { ws.close(1000, 'page left'); } catch { /* ignore */ } }
      ws = null;
    },
    is_open: () => Boolean(ws && ws.readyState === WebSocket.OPEN),
  };
}

// Calls on_payload(body) whenever the map changed; interval_ms() is asked before each wait
// so the page can poll faster while the socket is down. Hidden tabs skip their turn.
export function poll_seats(event_id, { etag, interval_ms, on_payload, alive }) {
  let timer = null;
  let stopped = false;
  let running = false;
  const tick = async () => {
    if (stopped || running || !alive()) return;
    running = true;
    clearTimeout(timer);
    if (!document.hidden) {
      try {
        const r = await api.get_seats(event_id, etag);
        if (!r.not_modified && r.body) {
          etag = r.etag;
          if (!stopped && alive()) on_payload(r.body);
        }
      } catch { /* next turn */ }
    }
    running = false;
    if (!stopped && alive()) timer = setTimeout(tick, interval_ms());
  };
  timer = setTimeout(tick, interval_ms());
  return {
    stop() { stopped = true; clearTimeout(timer); },
    now() { tick(); },
  };
}
