// views/auth.js — log in and sign up. Both return to ?next= (or the events list).

import { h, clear, spinner } from '../util.js';
import * as api from '../api.js';
import { error_box } from '../errors.js';
import { navigate } from '../store.js';

function next_hash(ctx) {
  const next = ctx.query.get('next') || '';
  return next.startsWith('#/') && !next.startsWith('#/login') && !next.startsWith('#/signup') ? next : '#/events';
}

function field(id, label, attrs) {
  return h('div', { class: 'field' },
    h('label', { for: id, text: label }),
    h('input', { id, name: id.replace(/^(login|signup)-/, ''), required: true, ...attrs }));
}

function auth_form(ctx, { title, intro, fields, submit_text, busy_text, run, footer }) {
  ctx.set_title(title);
  const status = h('div', { class: 'form-status' });
  const button = h('button', { type: 'submit', class: 'primary', text: submit_text });
  const form = h('form', { class: 'card narrow', novalidate: false }, ...fields, button, status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    button.disabled = true;
    clear(status).appendChild(spinner(busy_text));
    try {
      await run(new FormData(form));
      if (ctx.alive()) navigate(next_hash(ctx));
    } catch (err) {
      if (!ctx.alive()) return;
      clear(status).appendChild(error_box(err, { login: true }));
      button.disabled = false;
    }
  });
  ctx.main.append(h('h1', { text: title }), h('p', { class: 'lead', text: intro }), form, footer);
  return form;
}

export function render_login(ctx) {
  if (api.logged_in() && api.session.user) { navigate(next_hash(ctx)); return; }
  const next = ctx.query.get('next');
  auth_form(ctx, {
    title: 'Log in',
    intro: next ? 'Log in to continue.' : 'Welcome back. Log in to buy tickets and see your reservations.',
    fields: [
      field('login-email', 'Email', { type: 'email', autocomplete: 'email', inputmode: 'email' }),
      field('login-password', 'Password', { type: 'password', autocomplete: 'current-password' }),
    ],
    submit_text: 'Log in',
    busy_text: 'Logging in…',
    run: (data) => api.login(String(data.get('email')).trim(), String(data.get('password'))),
    footer: h('p', {}, 'New here? ', h('a', { href: `#/signup${next ? `?next=${encodeURIComponent(next)}` : ''}`, text: 'Create an account' })),
  });
}

export function render_signup(ctx) {
  if (api.logged_in() && api.session.user) { navigate(next_hash(ctx)); return; }
  const next = ctx.query.get('next');
  auth_form(ctx, {
    title: 'Sign up',
    intro: 'Create an account to buy tickets. It takes a few seconds.',
    fields: [
      field('signup-name', 'Name', { type: 'text', autocomplete: 'name', maxlength: '200' }),
      field('signup-email', 'Email', { type: 'email', autocomplete: 'email', inputmode: 'email' }),
      field('signup-password', 'Password', { type: 'password', autocomplete: 'new-password', minlength: '8', maxlength: '128', 'aria-describedby': 'password-hint' }),
      h('p', { class: 'hint', id: 'password-hint', text: '8 to 128 characters.' }),
    ],
    submit_text: 'Create account',
    busy_text: 'Creating your account…',
    run: (data) => api.signup(String(data.get('name')).trim(), String(data.get('email')).trim(), String(data.get('password'))),
    footer: h('p', {}, 'Already have an account? ', h('a', { href: `#/login${next ? `?next=${encodeURIComponent(next)}` : ''}`, text: 'Log in' })),
  });
}
