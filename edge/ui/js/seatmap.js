// seatmap.js — the seat map of one event, drawn from GET /events/{id}/seats and kept live
// by seat deltas ({"type":"seats","version":V,"changed":[[seat_id,status],...]}).
//
// Two renderers behind one interface, chosen by seat count:
//   * SVG (up to SVG_MAX_SEATS): one <g> per section, one <rect> per seat, built as one
//     string and inserted once; a delta changes one rect's class. Crisp at any zoom.
//   * Canvas (above): one fillRect per seat; a delta repaints one cell. A 200,000-seat
//     stadium is ~200k rects, which the DOM cannot lay out or restyle quickly, while a
//     canvas paints it in tens of milliseconds and keeps one element in the page.
// Both share the model (typed arrays indexed by seat), the layout (sections packed on
// shelves, each seat on an integer grid cell), hit testing through that grid, and keyboard
// navigation (arrow keys move a focus ring over seats, Enter/Space toggles the seat).

import { h, clear, money } from './util.js';

export const SVG_MAX_SEATS = 5000;
const STATUS = { free: 0, available: 0, held: 1, sold: 2 };
export const STATUS_NAMES = ['free', 'held', 'sold'];
// Spacing in seat cells. A canvas map has tiny cells (1.5-3 px), so its labels need more.
const SPACING = {
  svg: { gap: 2, label: 1, stage: 3 },      // gap between sections, label rows, stage rows
  canvas: { gap: 4, label: 8, stage: 14 },
};

export class SeatMap {
  constructor(host, options = {}) {
    this.host = host;
    this.on_toggle = options.on_toggle || (() => {});
    this.on_lost = options.on_lost || (() => {});
    this.force_mode = options.mode || null; // 'svg' | 'canvas' | null (auto)
    this.version = -1;
    this.cursor = -1;
    this.zoom_factor = 1;
    this.n = 0;
    this.build_dom();
  }

  // ---- model -------------------------------------------------------------------------

  load(payload) {
    const seats = (payload && payload.seats) || [];
    const n = seats.length;
    this.n = n;
    this.version = Number(payload.version ?? 0);
    this.ids = new Array(n);
    this.labels = new Array(n);
    this.rows = new Uint32Array(n);
    this.numbers = new Uint32Array(n);
    this.prices = new Float64Array(n);
    this.status = new Uint8Array(n);
    this.selected = new Uint8Array(n);
    this.flagged = new Uint8Array(n);
    this.section_of = new Uint16Array(n);
    this.index = new Map();
    this.sections = [];
    const section_index = new Map();
    for (let i = 0; i < n; i++) {
      const s = seats[i];
      const name = String(s.section ?? '');
      let k = section_index.get(name);
      if (k === undefined) {
        k = this.sections.length;
        section_index.set(name, k);
        this.sections.push({ name, max_row: 0, max_number: 0, min_price: Infinity, max_price: 0, count: 0, free: 0 });
      }
      const sec = this.sections[k];
      const id = String(s.seat_id);
      this.ids[i] = id;
      this.index.set(id, i);
      this.section_of[i] = k;
      this.rows[i] = Number(s.row) || 1;
      this.numbers[i] = Number(s.number) || 1;
      this.labels[i] = s.label || `${name}-${s.row}-${s.number}`;
      const price = typeof s.price_cents === 'number' ? s.price_cents : Number(s.price) || 0;
      this.prices[i] = price;
      this.status[i] = STATUS[s.status] ?? 2;
      sec.max_row = Math.max(sec.max_row, this.rows[i]);
      sec.max_number = Math.max(sec.max_number, this.numbers[i]);
      sec.min_price = Math.min(sec.min_price, price);
      sec.max_price = Math.max(sec.max_price, price);
      sec.count++;
      if (this.status[i] === 0) sec.free++;
    }
    this.mode = this.force_mode || (n > SVG_MAX_SEATS ? 'canvas' : 'svg');
    this.layout();
    this.cursor = -1;
    this.render();
  }

  // Sections packed left to right on shelves about as wide as the map is tall, each shelf
  // centred; every seat gets an integer cell (gx, gy) and the grid maps a cell back to it.
  layout() {
    const secs = this.sections;
    const { gap: SHELF_GAP, label: LABEL_ROWS, stage: STAGE_ROWS } = SPACING[this.mode];
    this.spacing = SPACING[this.mode];
    let area = 0, widest = 1;
    for (const s of secs) {
      s.w = s.max_number;
      s.h = s.max_row + LABEL_ROWS;
      area += (s.w + SHELF_GAP) * (s.h + SHELF_GAP);
      widest = Math.max(widest, s.w);
    }
    const target = Math.max(widest, Math.ceil(Math.sqrt(area) * 1.4));
    const shelves = [];
    let shelf = null;
    for (const s of secs) {
      if (!shelf || (shelf.width > 0 && shelf.width + SHELF_GAP + s.w > target)) {
        shelf = { items: [], width: 0, height: 0 };
        shelves.push(shelf);
      }
      if (shelf.items.length) shelf.width += SHELF_GAP;
      s.x = shelf.width;
      shelf.width += s.w;
      shelf.height = Math.max(shelf.height, s.h);
      shelf.items.push(s);
    }
    const width = Math.max(target, ...shelves.map((sh) => sh.width));
    let y = STAGE_ROWS;
    for (const sh of shelves) {
      const offset = Math.floor((width - sh.width) / 2);
      for (const s of sh.items) { s.x += offset; s.y = y; }
      y += sh.height + SHELF_GAP;
    }
    this.W = width;
    this.H = Math.max(y - SHELF_GAP, STAGE_ROWS + 1);
    this.gx = new Int32Array(this.n);
    this.gy = new Int32Array(this.n);
    this.grid = new Int32Array(this.W * this.H).fill(-1);
    for (let i = 0; i < this.n; i++) {
      const s = secs[this.section_of[i]];
      const gx = s.x + this.numbers[i] - 1;
      const gy = s.y + LABEL_ROWS + this.rows[i] - 1;
      this.gx[i] = gx;
      this.gy[i] = gy;
      this.grid[gy * this.W + gx] = i;
    }
  }

  seat(i) {
    return {
      index: i, seat_id: this.ids[i], label: this.labels[i], section: this.sections[this.section_of[i]].name,
      row: this.rows[i], number: this.numbers[i], price: this.prices[i], status: STATUS_NAMES[this.status[i]],
    };
  }

  index_of(seat_id) {
    const i = this.index.get(String(seat_id));
    return i === undefined ? -1 : i;
  }

  label_of(seat_id) {
    const i = this.index_of(seat_id);
    return i < 0 ? String(seat_id) : this.labels[i];
  }

  free_count(section_name) {
    let free = 0;
    for (let i = 0; i < this.n; i++) {
      if (this.status[i] === 0 && (!section_name || this.sections[this.section_of[i]].name === section_name)) free++;
    }
    return free;
  }

  // A delta from the WebSocket: the changes from version `from` to `version`. Older versions
  // than what we show are ignored. Returns true when our map is older than `from` (changes
  // were missed): the statuses are applied anyway, the version kept, and the caller refetches.
  apply_changes(version, changed, from) {
    if (version !== undefined && version !== null && Number(version) <= this.version) return false;
    const missed = from !== undefined && from !== null && Number(from) > this.version;
    if (!missed && version !== undefined && version !== null) this.version = Number(version);
    const lost = [];
    for (const pair of changed || []) {
      const i = this.index_of(pair[0]);
      if (i < 0) continue;
      this.set_status(i, STATUS[pair[1]] ?? 2, lost);
    }
    if (lost.length) this.on_lost(lost.map((i) => this.seat(i)));
    return missed;
  }

  // A full refetch (ETag changed). Same seats: apply as a diff. New layout: reload.
  replace(payload) {
    const seats = (payload && payload.seats) || [];
    if (Number(payload.version ?? 0) < this.version) return;
    const same = seats.length === this.n && seats.every((s, i) => String(s.seat_id) === this.ids[i]);
    if (!same) {
      const keep = this.selected_ids();
      this.load(payload);
      for (const id of keep) {
        const i = this.index_of(id);
        if (i >= 0 && this.status[i] === 0) this.set_selected(i, true);
      }
      return;
    }
    this.version = Number(payload.version ?? 0);
    const lost = [];
    for (let i = 0; i < seats.length; i++) this.set_status(i, STATUS[seats[i].status] ?? 2, lost);
    if (lost.length) this.on_lost(lost.map((i) => this.seat(i)));
  }

  set_status(i, status, lost) {
    if (this.status[i] === status) return;
    const sec = this.sections[this.section_of[i]];
    if (this.status[i] === 0) sec.free--;
    if (status === 0) sec.free++;
    this.status[i] = status;
    if (status !== 0 && this.selected[i]) {
      this.selected[i] = 0;
      if (lost) lost.push(i);
    }
    if (status === 0) this.flagged[i] = 0;
    this.paint(i);
  }

  set_selected(i, on) {
    this.selected[i] = on ? 1 : 0;
    if (on) this.flagged[i] = 0;
    this.paint(i);
  }

  selected_ids() {
    const out = [];
    for (let i = 0; i < this.n; i++) if (this.selected[i]) out.push(this.ids[i]);
    return out;
  }

  clear_selection() {
    for (let i = 0; i < this.n; i++) if (this.selected[i]) this.set_selected(i, false);
  }

  // Seats the server said were unavailable (409): drawn in red until they change again.
  flag_unavailable(seat_ids) {
    for (let i = 0; i < this.n; i++) if (this.flagged[i]) { this.flagged[i] = 0; this.paint(i); }
    for (const id of seat_ids) {
      const i = this.index_of(id);
      if (i < 0) continue;
      this.flagged[i] = 1;
      this.selected[i] = 0;
      if (this.status[i] === 0) this.status[i] = 1; // it is taken, whatever our copy says
      this.paint(i);
    }
    if (this.cursor >= 0) this.describe(this.cursor);
  }

  // ---- DOM ---------------------------------------------------------------------------

  build_dom() {
    clear(this.host);
    this.info = h('p', { class: 'seat-info', id: `seat-info-${Math.random().toString(36).slice(2)}`, 'aria-live': 'polite' }, 'Point at a seat, or focus the map and use the arrow keys.');
    this.ring = h('div', { class: 'seat-ring', hidden: true });
    this.stage_host = h('div', { class: 'map-canvas-host' });
    this.scroller = h('div', {
      class: 'map-scroller', tabindex: '0', role: 'application',
      'aria-label': 'Seat map. Arrow keys move between seats, Enter or Space selects the seat, plus and minus zoom.',
      'aria-describedby': this.info.id,
    }, this.stage_host, this.ring);
    this.host.append(this.scroller, this.info);
    this.scroller.addEventListener('click', (e) => this.on_click(e));
    this.scroller.addEventListener('mousemove', (e) => this.on_move(e));
    this.scroller.addEventListener('keydown', (e) => this.on_key(e));
    this.scroller.addEventListener('focus', () => {
      if (this.cursor < 0 && this.n) this.move_cursor(this.first_free());
      else this.show_ring();
    });
    this.scroller.addEventListener('blur', () => { this.ring.hidden = true; });
    this.resize_observer = new ResizeObserver(() => {
      const w = this.scroller.clientWidth;
      if (this.n && Math.abs(w - (this.last_width || 0)) > 40) this.render();
    });
    this.resize_observer.observe(this.scroller);
  }

  destroy() {
    if (this.resize_observer) this.resize_observer.disconnect();
    clear(this.host);
  }

  cell_px() {
    const avail = Math.max(200, (this.scroller.clientWidth || 600) - 4);
    this.last_width = this.scroller.clientWidth;
    const fit = avail / this.W;
    const min = this.mode === 'svg' ? 7 : 1;
    const max = this.mode === 'svg' ? 26 : 14;
    return Math.min(Math.max(fit, min), max) * this.zoom_factor;
  }

  zoom(factor) {
    this.zoom_factor = Math.min(Math.max(this.zoom_factor * factor, 0.5), 12);
    this.render();
    if (this.cursor >= 0) this.show_ring(true);
  }

  render() {
    if (!this.n) {
      clear(this.stage_host).appendChild(h('p', { class: 'muted', text: 'This event has no seats to show.' }));
      return;
    }
    this.cell = this.cell_px();
    if (this.mode === 'svg') this.render_svg(); else this.render_canvas();
    this.host.dataset.mode = this.mode;
    this.host.dataset.seats = String(this.n);
  }

  render_svg() {
    const parts = [];
    const { W, H } = this;
    parts.push(`<svg xmlns="http://www.w3.org/2000/svg" class="seatmap-svg" viewBox="0 0 ${W} ${H}" width="${Math.round(W * this.cell)}" height="${Math.round(H * this.cell)}" role="img" aria-label="Seat map with ${this.n} seats">`);
    parts.push(`<rect class="stage" x="${W * 0.2}" y="0.3" width="${W * 0.6}" height="1.6" rx="0.4"/>`);
    parts.push(`<text class="stage-label" x="${W / 2}" y="1.45" text-anchor="middle">STAGE</text>`);
    const by_section = this.sections.map(() => []);
    for (let i = 0; i < this.n; i++) by_section[this.section_of[i]].push(i);
    this.sections.forEach((s, k) => {
      parts.push(`<g class="section" data-section="${k}">`);
      parts.push(`<text class="section-label" x="${s.x}" y="${s.y + 0.8}">${escape_xml(s.name)} · ${escape_xml(price_range(s))}</text>`);
      for (const i of by_section[k]) {
        parts.push(`<rect data-i="${i}" class="${this.seat_class(i)}" x="${this.gx[i] + 0.1}" y="${this.gy[i] + 0.1}" width="0.8" height="0.8" rx="0.2"/>`);
      }
      parts.push('</g>');
    });
    parts.push('</svg>');
    this.stage_host.innerHTML = parts.join('');
    this.rects = new Array(this.n);
    for (const r of this.stage_host.querySelectorAll('rect[data-i]')) this.rects[Number(r.dataset.i)] = r;
    this.canvas = null;
  }

  seat_class(i) {
    let c = `seat s-${STATUS_NAMES[this.status[i]]}`;
    if (this.selected[i]) c += ' selected';
    if (this.flagged[i]) c += ' flagged';
    return c;
  }

  render_canvas() {
    const dpr_wanted = window.devicePixelRatio || 1;
    const css_w = this.W * this.cell, css_h = this.H * this.cell;
    const dpr = Math.max(0.25, Math.min(dpr_wanted, 16000 / css_w, 16000 / css_h));
    const canvas = h('canvas', { class: 'seatmap-canvas', role: 'img', 'aria-label': `Seat map with ${this.n} seats` });
    canvas.width = Math.ceil(css_w * dpr);
    canvas.height = Math.ceil(css_h * dpr);
    canvas.style.width = `${css_w}px`;
    canvas.style.height = `${css_h}px`;
    clear(this.stage_host).appendChild(canvas);
    this.canvas = canvas;
    this.rects = null;
    const ctx = canvas.getContext('2d', { alpha: false });
    ctx.setTransform(dpr * this.cell, 0, 0, dpr * this.cell, 0, 0);
    this.ctx = ctx;
    const css = getComputedStyle(this.host);
    const color = (name, fallback) => (css.getPropertyValue(name).trim() || fallback);
    this.colors = {
      bg: color('--map-bg', '#ffffff'), free: color('--seat-free', '#2e7d32'), held: color('--seat-held', '#f0b400'),
      sold: color('--seat-sold', '#b9bec4'), selected: color('--seat-selected', '#1457c8'),
      flagged: color('--seat-flagged', '#c62828'), text: color('--map-text', '#333333'), stage: color('--map-stage', '#e3e7ee'),
    };
    ctx.fillStyle = this.colors.bg;
    ctx.fillRect(0, 0, this.W, this.H);
    ctx.fillStyle = this.colors.stage;
    const stage = this.spacing.stage;
    ctx.fillRect(this.W * 0.2, stage * 0.1, this.W * 0.6, stage * 0.55);
    const font_cells = Math.max(0.9, 11 / this.cell);
    ctx.fillStyle = this.colors.text;
    ctx.font = `${font_cells}px system-ui, sans-serif`;
    ctx.textBaseline = 'alphabetic';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText('STAGE', this.W / 2, stage * 0.1 + stage * 0.55 / 2);
    ctx.textBaseline = 'alphabetic';
    ctx.textAlign = 'left';
    const label_y = Math.min(this.spacing.label - 1, font_cells) + 0.2;
    for (const s of this.sections) ctx.fillText(`${s.name} · ${price_range(s)}`, s.x, s.y + label_y, Math.max(s.w, 8));
    let last = '';
    for (let i = 0; i < this.n; i++) {
      const fill = this.fill_of(i);
      if (fill !== last) { ctx.fillStyle = fill; last = fill; }
      ctx.fillRect(this.gx[i] + 0.12, this.gy[i] + 0.12, 0.76, 0.76);
    }
  }

  fill_of(i) {
    if (this.flagged[i]) return this.colors.flagged;
    if (this.selected[i]) return this.colors.selected;
    return this.colors[STATUS_NAMES[this.status[i]]];
  }

  paint(i) {
    if (this.rects) {
      const r = this.rects[i];
      if (r) r.setAttribute('class', this.seat_class(i));
    } else if (this.ctx) {
      const ctx = this.ctx;
      ctx.fillStyle = this.colors.bg;
      ctx.fillRect(this.gx[i], this.gy[i], 1, 1);
      ctx.fillStyle = this.fill_of(i);
      ctx.fillRect(this.gx[i] + 0.12, this.gy[i] + 0.12, 0.76, 0.76);
    }
  }

  // ---- interaction -------------------------------------------------------------------

  seat_at_event(e) {
    if (this.rects) {
      const r = e.target.closest && e.target.closest('rect[data-i]');
      return r ? Number(r.dataset.i) : -1;
    }
    if (!this.canvas || e.target !== this.canvas) return -1;
    const box = this.canvas.getBoundingClientRect();
    const gx = Math.floor((e.clientX - box.left) / this.cell);
    const gy = Math.floor((e.clientY - box.top) / this.cell);
    if (gx < 0 || gy < 0 || gx >= this.W || gy >= this.H) return -1;
    return this.grid[gy * this.W + gx];
  }

  on_click(e) {
    const i = this.seat_at_event(e);
    if (i < 0) return;
    this.cursor = i;
    this.on_toggle(this.seat(i));
    this.describe(i);
  }

  on_move(e) {
    if (this.move_pending) return;
    this.move_pending = true;
    requestAnimationFrame(() => {
      this.move_pending = false;
      const i = this.seat_at_event(e);
      if (i >= 0 && i !== this.hover) { this.hover = i; this.describe(i); }
    });
  }

  on_key(e) {
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (moves[e.key]) {
      e.preventDefault();
      const start = this.cursor >= 0 ? this.cursor : this.first_free();
      this.move_cursor(this.neighbour(start, ...moves[e.key]));
    } else if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      if (this.cursor >= 0) { this.on_toggle(this.seat(this.cursor)); this.describe(this.cursor); }
    } else if (e.key === '+' || e.key === '=') {
      e.preventDefault(); this.zoom(1.25);
    } else if (e.key === '-') {
      e.preventDefault(); this.zoom(0.8);
    }
  }

  first_free() {
    for (let i = 0; i < this.n; i++) if (this.status[i] === 0) return i;
    return this.n ? 0 : -1;
  }

  neighbour(i, dx, dy) {
    if (i < 0) return -1;
    const x0 = this.gx[i], y0 = this.gy[i];
    if (dy === 0) {
      for (let x = x0 + dx; x >= 0 && x < this.W; x += dx) {
        const j = this.grid[y0 * this.W + x];
        if (j >= 0) return j;
      }
      return i;
    }
    for (let y = y0 + dy; y >= 0 && y < this.H; y += dy) {
      for (let d = 0; d <= 6; d++) {
        for (const x of d ? [x0 - d, x0 + d] : [x0]) {
          if (x < 0 || x >= this.W) continue;
          const j = this.grid[y * this.W + x];
          if (j >= 0) return j;
        }
      }
    }
    return i;
  }

  move_cursor(i) {
    if (i < 0) return;
    this.cursor = i;
    this.show_ring(true);
    this.describe(i);
  }

  show_ring(scroll) {
    if (this.cursor < 0 || document.activeElement !== this.scroller) { this.ring.hidden = true; return; }
    const c = this.cell;
    // Where the drawing starts inside the scrolled box (it is centred when narrower).
    const drawing = this.canvas || this.stage_host.firstElementChild;
    let x0 = 0, y0 = 0;
    if (drawing) {
      const d = drawing.getBoundingClientRect(), b = this.scroller.getBoundingClientRect();
      x0 = d.left - b.left - this.scroller.clientLeft + this.scroller.scrollLeft;
      y0 = d.top - b.top - this.scroller.clientTop + this.scroller.scrollTop;
    }
    Object.assign(this.ring.style, {
      left: `${x0 + this.gx[this.cursor] * c - 2}px`, top: `${y0 + this.gy[this.cursor] * c - 2}px`,
      width: `${c + 4}px`, height: `${c + 4}px`,
    });
    this.ring.hidden = false;
    if (scroll) this.ring.scrollIntoView({ block: 'nearest', inline: 'nearest' });
  }

  describe(i) {
    const s = this.seat(i);
    let state = s.status;
    if (this.selected[i]) state = 'selected by you';
    else if (this.flagged[i]) state = 'just taken';
    this.info.textContent = `Section ${s.section}, row ${s.row}, seat ${s.number} (${s.label}) · ${money(s.price)} · ${state}`;
  }
}

function price_range(s) {
  if (!Number.isFinite(s.min_price)) return '';
  return s.min_price === s.max_price ? money(s.min_price) : `${money(s.min_price)}–${money(s.max_price)}`;
}

function escape_xml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}
