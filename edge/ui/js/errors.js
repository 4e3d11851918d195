// errors.js — one clear sentence for every error the API can give (problem+json `code`).
// Unknown codes fall back to the server's own `detail`, then to a sentence per HTTP status.
// `ctx` lets a page add what it knows: seat labels, the per-user cap, the hold's expiry.

import { h, plural } from './util.js';

const by_code = {
  network_error: () => "We couldn't reach TIKETI. Check your connection and try again.",
  timeout: (e, ctx) => ctx.paying
    ? 'The payment is taking too long to answer. Check My reservations before paying again: it may have gone through.'
    : 'TIKETI took too long to answer. Please try again.',
  invalid_credentials: () => "That email and password don't match an account. Check them and try again.",
  unauthorized: (e, ctx) => ctx.login
    ? "That email and password don't match an account. Check them and try again."
    : 'Your session has ended. Please log in again.',
  invalid_token: () => 'Your session has ended. Please log in again.',
  invalid_refresh_token: () => 'Your session has ended. Please log in again.',
  refresh_token_expired: () => 'Your session has ended. Please log in again.',
  refresh_token_revoked: () => 'Your session has ended. Please log in again.',
  refresh_token_reused: () => 'For your safety this session was closed (it was used from two places). Please log in again.',
  user_not_found: () => 'This account no longer exists. Please sign up again.',
  email_taken: () => 'An account with this email already exists. Log in instead, or use another email.',
  invalid_request: (e) => `Something in the request isn't right${e.detail ? `: ${e.detail}` : '.'} Please correct it and try again.`,
  invalid_json: () => 'The request could not be read. Reload the page and try again.',
  forbidden: () => "You don't have permission to do that.",
  not_found: (e, ctx) => `We couldn't find ${ctx.what || 'that'}. It may have been removed, or the link is wrong.`,
  event_not_found: () => "We couldn't find this event. It may have been removed, or the link is wrong.",
  reservation_not_found: () => "We couldn't find this reservation in your account.",
  seat_unavailable: (e, ctx) => {
    const labels = (e.unavailable || []).map((id) => (ctx.label ? ctx.label(id) : id));
    if (!labels.length) return 'Sorry, some of those seats were just taken by someone else. Please pick other seats.';
    return `Sorry, ${plural(labels.length, 'seat was', 'seats were')} just taken by someone else (${labels.join(', ')}). `
      + 'They are marked on the map; please pick other seats.';
  },
  conflict: () => 'That just changed on the server. Reload and try again.',
  hold_expired: () => 'Your hold ran out before the payment finished, so the seats went back on sale. Nothing was charged. Please choose seats again.',
  gone: () => 'Your hold ran out before the payment finished, so the seats went back on sale. Nothing was charged. Please choose seats again.',
  expired: () => 'Your hold ran out, so the seats went back on sale. Please choose seats again.',
  not_admitted: () => "It isn't your turn to choose seats (you haven't been let in yet, or your turn has ended). Join the waiting room again.",
  seat_cap_reached: (e, ctx) => by_code.limit_reached(e, ctx),
  sold_out: (e, ctx) => (ctx.section
    ? `There aren't enough free seats left in section ${ctx.section}. Try fewer seats or another section.`
    : "There aren't enough free seats left for that many people. Try fewer seats."),
  limit_reached: (e, ctx) => ctx.cap
    ? `You can hold at most ${plural(ctx.cap, 'seat', 'seats')} for this event, counting the seats you already hold. Choose fewer seats.`
    : 'That is more seats than one person may hold for this event. Choose fewer seats.',
  payment_declined: () => 'Your card was declined, so nothing was charged. The seats were released; choose them again to try another card.',
  card_declined: () => 'Your card was declined, so nothing was charged. The seats were released; choose them again to try another card.',
  payment_failed: () => 'The payment provider refused this payment, so nothing was charged. The seats were released; choose them again to retry.',
  idempotency_key_reused: () => 'This request clashed with an earlier one. Reload the page and try again.',
  reservation_not_pending: () => 'This reservation is no longer waiting for payment. See My reservations for its status.',
  reservation_not_confirmed: () => 'Only confirmed reservations can be cancelled.',
  payment_in_progress: () => 'A payment for this reservation is still being processed. Wait a few seconds, then check My reservations.',
  refund_failed: () => "The refund couldn't be completed right now, so the booking is still active. Please try again later.",
  payment_not_refundable: () => "This payment can't be refunded.",
  card_token_invalid: () => 'This card is not accepted. Choose one of the listed test cards.',
  payment_unavailable: (e, ctx) => "We don't know yet whether your payment went through: the payment service gave no answer. "
    + 'You will not be charged twice, and if it did not go through nothing is charged. '
    + (ctx.expires ? `Your seats stay held until ${ctx.expires}; ` : 'Your seats stay held for now; ')
    + 'try again in a moment.',
  rate_limited: (e) => `Too many requests right now. Please wait ${e.retry_after_s != null ? plural(e.retry_after_s, 'second', 'seconds') : 'a few seconds'} and try again.`,
  queue_full: () => 'The waiting room is full right now. Please try again in a few minutes.',
  sale_not_open: () => "Tickets for this event aren't on sale yet. Come back when the sale opens.",
  event_closed: () => "Tickets for this event aren't on sale right now (the sale has closed, or hasn't opened yet).",
  unavailable: () => 'This service is briefly unavailable. Please try again in a moment.',
  database_unavailable: () => 'This service is briefly unavailable. Please try again in a moment.',
  storage_unavailable: () => 'This service is briefly unavailable. Please try again in a moment.',
  overloaded: () => 'TIKETI is very busy right now. Please try again in a few seconds.',
  internal: () => 'Something went wrong on our side. Please try again.',
  deadline_exceeded: () => 'TIKETI took too long to answer. Please try again.',
  server_error: () => 'Something went wrong on our side. Please try again.',
  http_error: (e) => `The request failed (HTTP ${e.status}). Please try again.`,
};

export function error_message(err, ctx = {}) {
  if (!err) return '';
  if (!(err && 'code' in err)) return String(err.message || err);
  const fn = by_code[err.code];
  if (fn) return fn(err, ctx);
  if (err.detail) return err.detail.endsWith('.') ? err.detail : `${err.detail}.`;
  if (err.title) return `${err.title}.`;
  const by_status = { 400: 'invalid_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 429: 'rate_limited', 503: 'unavailable' };
  const alt = by_code[by_status[err.status]] || (err.status >= 500 ? by_code.server_error : by_code.http_error);
  return alt(err, ctx);
}

// An alert box: role=alert so screen readers read it at once. Retry-After becomes a live
// countdown and, when given, `on_ready` is called when it reaches zero.
export function error_box(err, ctx = {}, on_ready) {
  const text = h('p', { text: error_message(err, ctx) });
  const box = h('div', { class: 'alert error', role: 'alert', dataset: { code: err && err.code ? err.code : 'error' } }, text);
  if (err && err.request_id) box.appendChild(h('p', { class: 'muted small', text: `Reference: ${err.request_id}` }));
  if (err && err.code === 'rate_limited' && err.retry_after_s) {
    let left = err.retry_after_s;
    const timer = setInterval(() => {
      left -= 1;
      if (!box.isConnected) { clearInterval(timer); return; }
      if (left <= 0) {
        clearInterval(timer);
        text.textContent = 'You can try again now.';
        if (on_ready) on_ready();
        return;
      }
      text.textContent = error_message({ ...err, retry_after_s: left }, ctx);
    }, 1000);
  }
  return box;
}

export function session_ended(err) {
  return err && err.status === 401;
}
