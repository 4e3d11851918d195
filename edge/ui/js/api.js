// api.js — the only module that talks HTTP to the edge (API.md, /api/v1).
//
// Session: the access token lives in memory only; the refresh token in sessionStorage so a
// reload of the tab keeps you logged in, and closing the tab forgets it. A 401 on an
// authenticated call triggers one refresh (shared by every call that hit it) and one retry;
// if the refresh fails, the session is dropped and listeners are told (the app shows login).
// Errors are thrown as ApiError carrying the problem+json `code` (errors.js words them).

import { uuid, sleep } from './util.js';

export const API_BASE = '/api/v1';
const REFRESH_KEY = 'tiketi.refresh_token';
const DEFAULT_TIMEOUT_MS = 15000;

export const session = { access_token: null, expires_at_ms: 0, user: null };
const listeners = new Set();
let refreshing = null;

export class ApiError extends Error {
  constructor(status, problem, headers) {
    const p = problem && typeof problem === 'object' ? problem : {};
    super(p.detail || p.title || `HTTP ${status}`);
    this.status = status;
    this.code = p.code || default_code(status);
    this.title = p.title || '';
    this.detail = p.detail || '';
    this.problem = p;
    this.unavailable = Array.isArray(p.unavailable) ? p.unavailable.map(String) : [];
    this.request_id = headers ? headers.get('X-Request-Id') : null;
    const retry = headers ? headers.get('Retry-After') : null;
    this.retry_after_s = retry ? retry_after_seconds(retry) : (typeof p.retry_after === 'number' ? p.retry_after : null);
  }
}

function default_code(status) {
  switch (status) {
    case 0: return 'network_error';
    case 400: return 'invalid_request';
    case 401: return 'unauthorized';
    case 402: return 'payment_declined';
    case 403: return 'forbidden';
    case 404: return 'not_found';
    case 409: return 'conflict';
    case 410: return 'gone';
    case 422: return 'limit_reached';
    case 429: return 'rate_limited';
    case 503: return 'unavailable';
    default: return status >= 500 ? 'server_error' : 'http_error';
  }
}

function retry_after_seconds(value) {
  const n = Number(value);
  if (Number.isFinite(n)) return Math.max(0, Math.ceil(n));
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

export function on_session_change(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function notify() {
  for (const fn of listeners) {
    try { fn(session); } catch (e) { console.error(e); }
  }
}

function stored_refresh() {
  try { return sessionStorage.getItem(REFRESH_KEY); } catch { return null; }
}

function store_tokens(body) {
  session.access_token = body.access_token;
  session.expires_at_ms = Date.now() + (Number(body.expires_in) || 900) * 1000;
  try {
    if (body.refresh_token) sessionStorage.setItem(REFRESH_KEY, body.refresh_token);
  } catch { /* storage disabled: memory-only session */ }
}

export function clear_session() {
  const had = Boolean(session.access_token || session.user || stored_refresh());
  session.access_token = null;
  session.expires_at_ms = 0;
  session.user = null;
  try { sessionStorage.removeItem(REFRESH_KEY); } catch { /* ignore */ }
  if (had) notify();
}

export function logged_in() {
  return Boolean(session.access_token || stored_refresh());
}

async function raw(method, path, { body, headers = {}, auth = true, timeout_ms = DEFAULT_TIMEOUT_MS } = {}) {
  const h = { Accept: 'application/json, application/problem+json', ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  if (auth && session.access_token) h.Authorization = `Bearer ${session.access_token}`;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeout_ms);
  let res;
  try {
    res = await fetch(API_BASE + path, {
      method, headers: h, cache: 'no-store', signal: controller.signal,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, { code: e && e.name === 'AbortError' ? 'timeout' : 'network_error' }, null);
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  if (res.status !== 204 && res.status !== 304) {
    const text = await res.text();
    if (text) {
      try { data = JSON.parse(text); } catch { data = { detail: text.slice(0, 200) }; }
    }
  }
  if (!res.ok && res.status !== 304) throw new ApiError(res.status, data, res.headers);
  return { status: res.status, body: data, headers: res.headers };
}

// One refresh at a time; every caller that needs it waits for the same promise.
export function refresh() {
  if (refreshing) return refreshing;
  const token = stored_refresh();
  if (!token) return Promise.resolve(false);
  refreshing = raw('POST', '/auth/refresh', { body: { refresh_token: token }, auth: false })
    .then((r) => { store_tokens(r.body); return true; })
    .catch((e) => {
      if (e.status === 401 || e.status === 400 || e.status === 403) clear_session();
      return false;
    })
    .finally(() => { refreshing = null; });
  return refreshing;
}

// Make sure an access token is present and not about to expire (for WebSocket URLs too).
export async function fresh_access_token() {
  if (!session.access_token || Date.now() > session.expires_at_ms - 10000) await refresh();
  return session.access_token;
}

export async function api(method, path, options = {}) {
  const auth = options.auth !== false;
  if (auth && stored_refresh()) await fresh_access_token();
  try {
    return await raw(method, path, { ...options, auth });
  } catch (e) {
    if (e.status === 401 && auth && !options.retried) {
      if (await refresh()) return api(method, path, { ...options, retried: true });
      clear_session();
    }
    throw e;
  }
}

// For calls carrying an Idempotency-Key: a lost connection is retried once with the SAME
// key, so the server can answer the first attempt's result instead of doing it twice.
export async function api_idempotent(method, path, options = {}) {
  const key = options.idempotency_key || uuid();
  const headers = { ...(options.headers || {}), 'Idempotency-Key': key };
  try {
    return await api(method, path, { ...options, headers });
  } catch (e) {
    if (e.status !== 0 || e.code === 'timeout') throw e;
    await sleep(1000);
    return api(method, path, { ...options, headers });
  }
}

// --- auth ---------------------------------------------------------------------------

export async function login(email, password) {
  const r = await raw('POST', '/auth/login', { body: { email, password }, auth: false });
  store_tokens(r.body);
  await load_me();
  notify();
  return session.user;
}

export async function signup(name, email, password) {
  await raw('POST', '/auth/signup', { body: { email, password, name }, auth: false });
  return login(email, password);
}

export async function logout() {
  const token = stored_refresh();
  try {
    if (session.access_token || token) await raw('POST', '/auth/logout', { body: token ? { refresh_token: token } : undefined });
  } catch { /* the session is dropped locally whatever the server says */ }
  clear_session();
}

export async function load_me() {
  const r = await api('GET', '/auth/me');
  session.user = r.body;
  return session.user;
}

// Called once at start: a refresh token from this tab's storage gives a new access token.
export async function resume_session() {
  if (!stored_refresh()) return null;
  if (!(await refresh())) return null;
  try { await load_me(); } catch { return null; }
  notify();
  return session.user;
}

// --- events, queue, holds, reservations -----------------------------------------------

const enc = encodeURIComponent;

export function list_events({ q = '', status = '', cursor = '', limit = 20 } = {}) {
  const params = new URLSearchParams();
  if (q) params.set('q', q);
  if (status) params.set('status', status);
  if (cursor) params.set('cursor', cursor);
  params.set('limit', String(limit));
  return api('GET', `/events?${params}`, { auth: false }).then((r) => r.body);
}

export function get_event(event_id) {
  return api('GET', `/events/${enc(event_id)}`, { auth: false }).then((r) => r.body);
}

// Returns {not_modified:true} on 304, else {etag, body}.
export async function get_seats(event_id, etag) {
  const headers = etag ? { 'If-None-Match': etag } : {};
  const r = await api('GET', `/events/${enc(event_id)}/seats`, { auth: false, headers, timeout_ms: 60000 });
  if (r.status === 304) return { not_modified: true, etag };
  return { etag: r.headers.get('ETag'), body: r.body };
}

export function join_queue(event_id) {
  return api('POST', `/events/${enc(event_id)}/queue`, { body: {} }).then((r) => r.body);
}

export function queue_status(event_id) {
  return api('GET', `/events/${enc(event_id)}/queue`).then((r) => r.body);
}

export function leave_queue(event_id) {
  return api('DELETE', `/events/${enc(event_id)}/queue`);
}

export async function queue_ws_url(event_id) {
  const token = await fresh_access_token();
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${API_BASE}/events/${enc(event_id)}/queue/ws?access_token=${enc(token || '')}`;
}

export function hold_seats(event_id, admission_token, body) {
  return api_idempotent('POST', `/events/${enc(event_id)}/holds`, {
    body, headers: { 'X-Admission-Token': admission_token || '' },
  }).then((r) => r.body);
}

export function release_reservation(reservation_id) {
  return api('DELETE', `/reservations/${enc(reservation_id)}`);
}

export function pay(reservation_id, card_token, idempotency_key) {
  return api_idempotent('POST', `/reservations/${enc(reservation_id)}/payment`, {
    body: { method: 'card', card_token }, idempotency_key, timeout_ms: 45000,
  }).then((r) => r.body);
}

export async function list_reservations() {
  const body = (await api('GET', '/reservations')).body;
  if (Array.isArray(body)) return body;
  return (body && (body.reservations || body.items)) || [];
}

export function get_reservation(reservation_id) {
  return api('GET', `/reservations/${enc(reservation_id)}`).then((r) => r.body);
}

export function cancel_reservation(reservation_id) {
  return api('POST', `/reservations/${enc(reservation_id)}/cancel`, { body: {} }).then((r) => r.body);
}
