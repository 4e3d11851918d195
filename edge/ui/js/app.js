// app.js — entry point: hash router, header, page lifecycle.
//
// Routes (location.hash):
//   #/events                    events list (search, status filter, "load more")
//   #/events/{id}               event page: seat map (live), choose seats / best available
//   #/events/{id}/queue         waiting room: live position and ETA
//   #/checkout/{reservation}    pay with a test card
//   #/reservations              my reservations: pay, release, cancel
//   #/login, #/signup           (?next=#/... to come back)
// Each page is `render(ctx)`; ctx.alive() turns false when the user leaves, and ctx.defer(fn)
// registers cleanup (timers, WebSockets) run at that moment.

import { h, clear } from './util.js';
import * as api from './api.js';
import { navigate, login_hash, forget_session_state } from './store.js';
import { render_login, render_signup } from './views/auth.js';
import { render_events } from './views/events.js';
import { render_event } from './views/event.js';
import { render_queue } from './views/queue.js';
import { render_checkout } from './views/checkout.js';
import { render_reservations } from './views/reservations.js';

const routes = [
  { pattern: /^\/events\/?$/, view: render_events, title: 'Events' },
  { pattern: /^\/events\/([^/]+)\/queue$/, view: render_queue, title: 'Waiting room', auth: true },
  { pattern: /^\/events\/([^/]+)$/, view: render_event, title: 'Event' },
  { pattern: /^\/checkout\/([^/]+)$/, view: render_checkout, title: 'Checkout', auth: true },
  { pattern: /^\/reservations\/?$/, view: render_reservations, title: 'My reservations', auth: true },
  { pattern: /^\/login$/, view: render_login, title: 'Log in' },
  { pattern: /^\/signup$/, view: render_signup, title: 'Sign up' },
];

let current = null;

function parse_hash() {
  const raw = location.hash.replace(/^#/, '') || '/events';
  const [path, qs] = raw.split('?');
  return { path, query: new URLSearchParams(qs || '') };
}

function route() {
  const { path, query } = parse_hash();
  if (current) current.dispose();
  const main = document.getElementById('main');
  clear(main);
  let match = null, entry = null;
  for (const r of routes) {
    match = path.match(r.pattern);
    if (match) { entry = r; break; }
  }
  if (!entry) {
    if (path === '/' || path === '') { navigate('#/events'); return; }
    main.appendChild(h('h1', { tabindex: '-1', text: 'Page not found' }));
    main.appendChild(h('p', {}, "There's nothing here. ", h('a', { href: '#/events', text: 'See all events' })));
    focus_heading(main);
    return;
  }
  if (entry.auth && !api.logged_in()) { navigate(login_hash(location.hash)); return; }
  const cleanups = [];
  let alive = true;
  current = {
    dispose() {
      alive = false;
      for (const fn of cleanups.splice(0)) { try { fn(); } catch (e) { console.error(e); } }
    },
  };
  const ctx = {
    main, query, params: match.slice(1).map(decodeURIComponent),
    alive: () => alive,
    defer: (fn) => cleanups.push(fn),
    set_title: (t) => { document.title = `${t} · TIKETI`; },
  };
  ctx.set_title(entry.title);
  update_nav(path);
  Promise.resolve(entry.view(ctx)).catch((e) => {
    console.error(e);
    if (alive) main.appendChild(h('div', { class: 'alert error', role: 'alert', text: 'Something went wrong while showing this page. Reload to try again.' }));
  });
  focus_heading(main);
}

// Move focus to the new page's heading so keyboard and screen-reader users land on it.
function focus_heading(main) {
  requestAnimationFrame(() => {
    const h1 = main.querySelector('h1');
    if (h1) { h1.setAttribute('tabindex', '-1'); h1.focus({ preventScroll: true }); }
    window.scrollTo(0, 0);
  });
}

function update_nav(path) {
  for (const a of document.querySelectorAll('#nav a[data-path]')) {
    if (path.startsWith(a.dataset.path)) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function render_header() {
  const nav = clear(document.getElementById('nav'));
  const items = [h('a', { href: '#/events', dataset: { path: '/events' }, text: 'Events' })];
  if (api.logged_in()) {
    items.push(h('a', { href: '#/reservations', dataset: { path: '/reservations' }, text: 'My reservations' }));
    const who = api.session.user ? (api.session.user.name || api.session.user.email) : '';
    if (who) items.push(h('span', { class: 'who', id: 'who', title: api.session.user.email || '' }, who));
    items.push(h('button', {
      type: 'button', class: 'link-button', id: 'logout',
      onclick: async () => { await api.logout(); forget_session_state(); navigate('#/events'); },
    }, 'Log out'));
  } else {
    items.push(h('a', { href: '#/login', dataset: { path: '/login' }, text: 'Log in' }));
    items.push(h('a', { href: '#/signup', dataset: { path: '/signup' }, class: 'nav-cta', text: 'Sign up' }));
  }
  nav.append(...items);
  update_nav(parse_hash().path);
}

async function start() {
  // The skip link must not touch the hash: the hash is the route.
  document.querySelector('.skip-link').addEventListener('click', (e) => {
    e.preventDefault();
    document.getElementById('main').focus();
  });
  api.on_session_change(() => render_header());
  render_header();
  await api.resume_session();
  render_header();
  window.addEventListener('hashchange', route);
  if (!location.hash) history.replaceState(null, '', '#/events');
  route();
}

start();
