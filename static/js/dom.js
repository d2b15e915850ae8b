// Small DOM and formatting helpers shared by every panel. Text is always set with
// textContent (never innerHTML), so data from the API cannot inject markup.

export const $ = (selector, root = document) => root.querySelector(selector);

/** h('td', {class: 'x', dataset: {id}}, 'text', child) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function badge(status) {
  return h('span', { class: 'badge', dataset: { status: status ?? '' } }, status ?? '');
}

export function setBadge(el, status) {
  el.textContent = status ?? '';
  el.dataset.status = status ?? '';
}

export const shortId = (uuid) => (uuid ? String(uuid).slice(0, 8) : '');

const pad = (n) => String(n).padStart(2, '0');

/** Local date and time, `2026-02-24 10:30:05`. */
export function formatTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Time of day for today's times, else a short date and time; the full time is in `title`. */
export function formatShort(iso, now = new Date()) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (d.toDateString() === now.toDateString()) return time;
  return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time.slice(0, 5)}`;
}

/** Drops the `fresh` highlight once its animation has had time to play. */
export function settle(root) {
  setTimeout(() => { for (const el of root.querySelectorAll('.fresh')) el.classList.remove('fresh'); }, 1700);
}

export function formatClock(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** `5 s ago`, `3 min ago`, `2 h ago`. */
export function ago(iso, now = Date.now()) {
  if (!iso) return '';
  const secs = Math.max(0, Math.round((now - new Date(iso).getTime()) / 1000));
  if (secs < 60) return `${secs} s ago`;
  if (secs < 3600) return `${Math.round(secs / 60)} min ago`;
  if (secs < 86400) return `${Math.round(secs / 3600)} h ago`;
  return `${Math.round(secs / 86400)} d ago`;
}

export function formatDuration(secs) {
  if (!Number.isFinite(secs) || secs < 0) return '';
  if (secs < 60) return `${Math.round(secs)} s`;
  if (secs < 3600) return `${Math.floor(secs / 60)} min ${Math.round(secs % 60)} s`;
  return `${Math.floor(secs / 3600)} h ${Math.round((secs % 3600) / 60)} min`;
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** A pager: `<nav>` with prev/next buttons and a label; calls onPage(page). */
export function bindPager(nav, onPage) {
  nav.addEventListener('click', (e) => {
    const button = e.target.closest('button[data-page]');
    if (!button || button.disabled) return;
    onPage(button.dataset.page === 'prev' ? -1 : 1);
  });
}

export function renderPager(nav, page, pageSize, total) {
  const pages = Math.max(1, Math.ceil(total / pageSize));
  const prev = nav.querySelector('[data-page="prev"]');
  const next = nav.querySelector('[data-page="next"]');
  const focused = document.activeElement;
  nav.querySelector('[data-label]').textContent = `Page ${page} of ${pages}`;
  prev.disabled = page <= 1;
  next.disabled = page >= pages;
  nav.hidden = total <= pageSize && page === 1;
  // A button that gets disabled while focused drops the focus to <body>: someone paging with
  // the keyboard stays in the pager, on the button that still goes somewhere.
  if ((focused === prev || focused === next) && focused.disabled && !nav.hidden) {
    const other = focused === prev ? next : prev;
    if (!other.disabled) other.focus();
  }
}

export function toast(message, { error = false, ms = 5000 } = {}) {
  const box = document.getElementById('toasts');
  const item = h('div', { class: error ? 'toast error' : 'toast' }, message);
  box.append(item);
  setTimeout(() => item.remove(), ms);
}

/** Calls fn at most once per `ms`, always with the latest call eventually run. */
export function throttle(fn, ms) {
  let timer = null;
  let pending = false;
  let running = false;
  const run = async () => {
    timer = null;
    if (running) { pending = true; return; }
    running = true;
    pending = false;
    try { await fn(); } finally {
      running = false;
      if (pending) schedule();
    }
  };
  const schedule = () => { if (!timer) timer = setTimeout(run, ms); };
  schedule.now = () => { clearTimeout(timer); timer = null; return run(); };
  return schedule;
}

/**
 * Wraps a page fetch so that live messages arriving while it is in flight are not lost: the
 * fetch's answer may predate them, so `touch()` during a load makes it fetch once more.
 * `load()` while a load runs joins it (and asks for that one more fetch).
 */
export function liveLoader(fetchOnce) {
  let loading = null;
  let stale = false;
  const load = () => {
    if (loading) { stale = true; return loading; }
    loading = (async () => {
      do {
        stale = false;
        await fetchOnce();
      } while (stale);
    })().finally(() => { loading = null; });
    return loading;
  };
  const touch = () => { if (loading) stale = true; };
  return { load, touch };
}
