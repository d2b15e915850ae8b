// The run's throughput and success-rate chart, drawn on a <canvas>. Data: finished jobs per
// fine time bucket, first from `GET /api/runs/{id}/timeline` (so a reload shows history),
// then added one by one from live `update_job_status` messages. Bars are the jobs finished
// per display bucket (stacked by outcome), the line the cumulative success rate
// (succeeded / (succeeded + failed)).

import { formatClock } from './dom.js';

const DISPLAY_BUCKETS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];
const MAX_BARS = 60;
const COLORS = { success: '#15803d', failed: '#dc2626', cancelled: '#6b7280', rate: '#7c3aed', axis: '#4b5563', grid: '#e5e7eb' };

/** The fine bucket size to ask the server for, from how long the run has lasted. */
export function fineBucketSecs(spanSecs) {
  if (spanSecs <= 2 * 3600) return 1;
  if (spanSecs <= 24 * 3600) return 10;
  return 60;
}

export class RunChart {
  constructor(canvas, text) {
    this.canvas = canvas;
    this.text = text;
    this.reset(null);
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  /** Forgets the data; `run` gives the time range (run_datetime, run_finished, live or not). */
  reset(run) {
    this.run = run;
    this.fineSecs = 1;
    this.fine = new Map();
    this.liveCounted = new Map();
  }

  setRun(run) {
    this.run = run;
  }

  load(timeline) {
    this.fineSecs = timeline.bucket_secs || 1;
    this.fine = new Map();
    this.liveCounted = new Map();
    for (const b of timeline.buckets || []) {
      const at = new Date(b.start).getTime();
      this.fine.set(at, { success: b.success || 0, failed: b.failed || 0, cancelled: b.cancelled || 0 });
    }
  }

  /** A job reached a final status (live). A job seen again moves rather than counts twice. */
  addFinished(jobUuid, status, atMs) {
    const key = { Success: 'success', Failed: 'failed', Cancelled: 'cancelled' }[status];
    if (!key) return;
    const size = this.fineSecs * 1000;
    const start = Math.floor(atMs / size) * size;
    const previous = this.liveCounted.get(jobUuid);
    if (previous) {
      const old = this.fine.get(previous.start);
      if (old) old[previous.key] = Math.max(0, old[previous.key] - 1);
    }
    const bucket = this.fine.get(start) || { success: 0, failed: 0, cancelled: 0 };
    bucket[key] += 1;
    this.fine.set(start, bucket);
    this.liveCounted.set(jobUuid, { start, key });
  }

  totals() {
    const t = { success: 0, failed: 0, cancelled: 0 };
    for (const b of this.fine.values()) {
      t.success += b.success; t.failed += b.failed; t.cancelled += b.cancelled;
    }
    return t;
  }

  isLive(now) {
    const status = this.run && this.run.run_status;
    if (status === 'dispatching' || status === 'running') return true;
    if (status) return false;
    const last = Math.max(0, ...this.fine.keys());
    return now - last < 3600 * 1000;
  }

  /** [start, end] in ms of what to show. */
  range(now) {
    const keys = [...this.fine.keys()].sort((a, b) => a - b);
    const fine = this.fineSecs * 1000;
    const runStart = this.run ? new Date(this.run.run_datetime).getTime() : NaN;
    const runEnd = this.run && this.run.run_finished ? new Date(this.run.run_finished).getTime() : NaN;
    const first = keys.length ? keys[0] : NaN;
    let start = Number.isFinite(runStart) ? runStart : first;
    if (Number.isFinite(first) && (!Number.isFinite(start) || first - start > 6 * 3600 * 1000 || first < start)) start = first;
    let end = keys.length ? keys[keys.length - 1] + fine : start;
    if (Number.isFinite(runEnd) && runEnd > end && runEnd - start < 7 * 86400 * 1000) end = runEnd;
    if (this.isLive(now)) end = Math.max(end, now);
    if (!Number.isFinite(start)) start = now - 60000;
    if (!(end > start)) end = start + 60000;
    return [start, end];
  }

  draw() {
    const canvas = this.canvas;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight || 180;
    if (!width) return;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);

    const now = Date.now();
    const [start, end] = this.range(now);
    const spanSecs = (end - start) / 1000;
    const bucketSecs = DISPLAY_BUCKETS.find((s) => s >= this.fineSecs && spanSecs / s <= MAX_BARS) || 86400;
    const size = bucketSecs * 1000;
    const first = Math.floor(start / size) * size;
    const count = Math.max(1, Math.ceil((end - first) / size));
    const bars = Array.from({ length: count }, () => ({ success: 0, failed: 0, cancelled: 0 }));
    for (const [at, b] of this.fine) {
      const i = Math.min(count - 1, Math.max(0, Math.floor((at - first) / size)));
      bars[i].success += b.success; bars[i].failed += b.failed; bars[i].cancelled += b.cancelled;
    }
    const totals = this.totals();
    const finished = totals.success + totals.failed + totals.cancelled;
    canvas.dataset.finished = String(finished);
    canvas.dataset.success = String(totals.success);
    canvas.dataset.failed = String(totals.failed);
    canvas.dataset.bucketSecs = String(bucketSecs);

    const pad = { left: 38, right: 42, top: 10, bottom: 22 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    const maxBar = Math.max(1, ...bars.map((b) => b.success + b.failed + b.cancelled));
    const yMax = niceCeil(maxBar);

    ctx.font = '11px system-ui, sans-serif';
    ctx.lineWidth = 1;
    // Grid and left axis (jobs per bucket).
    ctx.fillStyle = COLORS.axis;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const y = pad.top + plotH - (plotH * i) / 4;
      ctx.strokeStyle = COLORS.grid;
      ctx.beginPath(); ctx.moveTo(pad.left, y + 0.5); ctx.lineTo(pad.left + plotW, y + 0.5); ctx.stroke();
      ctx.fillText(String(Math.round((yMax * i) / 4)), pad.left - 6, y);
      ctx.textAlign = 'left';
      ctx.fillText(`${25 * i}%`, pad.left + plotW + 6, y);
      ctx.textAlign = 'right';
    }
    // Bars.
    const slot = plotW / count;
    const barW = Math.max(1, Math.min(28, slot * 0.8));
    bars.forEach((b, i) => {
      let y = pad.top + plotH;
      const x = pad.left + i * slot + (slot - barW) / 2;
      for (const key of ['success', 'failed', 'cancelled']) {
        if (!b[key]) continue;
        const h = (plotH * b[key]) / yMax;
        ctx.fillStyle = COLORS[key];
        ctx.fillRect(x, y - h, barW, h);
        y -= h;
      }
    });
    // Cumulative success rate: a line through its points, each point marked while they are
    // few (a run that finished within one bucket has a single point, which a line alone hides).
    let ok = 0;
    let bad = 0;
    const points = [];
    bars.forEach((b, i) => {
      ok += b.success; bad += b.failed;
      if (ok + bad === 0 || b.success + b.failed === 0) return;
      points.push([pad.left + i * slot + slot / 2, pad.top + plotH - (plotH * ok) / (ok + bad)]);
    });
    ctx.strokeStyle = COLORS.rate;
    ctx.fillStyle = COLORS.rate;
    ctx.lineWidth = 2;
    ctx.beginPath();
    points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    ctx.stroke();
    if (points.length <= 12) {
      for (const [x, y] of points) {
        ctx.beginPath();
        ctx.arc(x, y, 3.5, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
    // Time axis.
    ctx.fillStyle = COLORS.axis;
    ctx.textBaseline = 'top';
    // As many time labels as fit (about 80 px each), at bar starts.
    const labels = Math.max(1, Math.min(count, Math.floor(plotW / 80)));
    const step = Math.ceil(count / labels);
    for (let index = 0; index < count; index += step) {
      const x = pad.left + index * slot;
      ctx.textAlign = index === 0 ? 'left' : 'center';
      ctx.fillText(formatClock(first + index * size), x, pad.top + plotH + 6);
    }

    const rate = totals.success + totals.failed ? Math.round((100 * totals.success) / (totals.success + totals.failed)) : null;
    const minutes = Math.max(1 / 60, (end - start) / 60000);
    const perMin = finished / minutes;
    const recent = [...this.fine].filter(([at]) => at >= now - 60000).reduce((n, [, b]) => n + b.success + b.failed + b.cancelled, 0);
    const parts = [`${finished} job${finished === 1 ? '' : 's'} finished`, `${perMin.toFixed(perMin < 10 ? 1 : 0)} jobs/min overall`];
    if (this.isLive(now)) parts.push(`${recent} in the last minute`);
    if (rate !== null) parts.push(`success rate ${rate}%`);
    parts.push(`bars of ${bucketSecs < 60 ? `${bucketSecs} s` : `${bucketSecs / 60} min`}`);
    this.text.textContent = parts.join(' · ');
    canvas.setAttribute('aria-label', finished ? `Chart: ${parts.join(', ')}` : 'No finished jobs yet');
  }
}

function niceCeil(n) {
  if (n <= 4) return 4;
  const exp = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 2.5, 5, 10]) {
    if (m * exp >= n) return Math.ceil((m * exp) / 4) * 4;
  }
  return n;
}
