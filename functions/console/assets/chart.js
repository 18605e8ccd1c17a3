// Per-instance charts, drawn as inline SVG from the events API: events
// received and delivered per time bucket, and delivery latency (stored →
// accepted by the callback, from each delivered event's dates).

import { h } from './dom.js';
import { deliveryStatus } from './events.js';

const W = 720;
const H = 190;
const PAD = { left: 48, right: 12, top: 12, bottom: 28 };
const BUCKETS = 24;
const NICE_STEPS_MS = [60e3, 5 * 60e3, 15 * 60e3, 30 * 60e3, 3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3, 86400e3];

/** Buckets events over time: received by createdDate, delivered and latency by updatedDate. */
export function bucketize(events, now = Date.now()) {
  const created = events.map((e) => Date.parse(e.createdDate)).filter(Number.isFinite);
  const start0 = created.length ? Math.min(...created) : now - 3600e3;
  const span = Math.max(now - start0, 60e3);
  const step = NICE_STEPS_MS.find((s) => s * BUCKETS >= span) || Math.ceil(span / BUCKETS);
  const start = Math.floor((now - step * BUCKETS) / step) * step + step;
  const buckets = Array.from({ length: BUCKETS }, (_, i) => ({ at: start + i * step, received: 0, delivered: 0, latencies: [] }));
  const index = (t) => Math.floor((t - start) / step);
  for (const e of events) {
    const c = Date.parse(e.createdDate);
    const i = index(c);
    if (buckets[i]) buckets[i].received += 1;
    if (deliveryStatus(e) === 'delivered') {
      const d = Date.parse(e.updatedDate);
      const j = index(d);
      if (buckets[j]) {
        buckets[j].delivered += 1;
        buckets[j].latencies.push(Math.max(0, d - c));
      }
    }
  }
  for (const b of buckets) {
    b.latencies.sort((x, y) => x - y);
    b.p50 = b.latencies.length ? b.latencies[Math.floor((b.latencies.length - 1) / 2)] : null;
    b.max = b.latencies.length ? b.latencies[b.latencies.length - 1] : null;
  }
  return { buckets, step };
}

function label(t, step) {
  const d = new Date(t);
  return step >= 86400e3 ? d.toLocaleDateString() : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function frame(title, desc, maxY, unit, buckets, step) {
  const titleId = `chart-title-${title.replace(/\W/g, '')}`;
  const svg = h('svg:svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-labelledby': titleId, 'data-chart': title });
  svg.append(h('svg:title', { id: titleId }, `${title}. ${desc}`));
  const y0 = H - PAD.bottom;
  svg.append(h('svg:line', { x1: PAD.left, y1: y0, x2: W - PAD.right, y2: y0, stroke: '#9aa3b5' }));
  svg.append(h('svg:line', { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: y0, stroke: '#9aa3b5' }));
  svg.append(h('svg:text', { x: PAD.left - 6, y: PAD.top + 8, 'text-anchor': 'end' }, `${maxY}${unit}`));
  svg.append(h('svg:text', { x: PAD.left - 6, y: y0, 'text-anchor': 'end' }, `0${unit}`));
  for (const i of [0, Math.floor(BUCKETS / 2), BUCKETS - 1]) {
    const x = PAD.left + ((i + 0.5) * (W - PAD.left - PAD.right)) / BUCKETS;
    svg.append(h('svg:text', { x, y: H - 8, 'text-anchor': 'middle' }, label(buckets[i].at, step)));
  }
  return svg;
}

/** Received and delivered events per bucket, as paired bars. */
export function countsChart({ buckets, step }) {
  const maxY = Math.max(1, ...buckets.map((b) => Math.max(b.received, b.delivered)));
  const received = buckets.reduce((n, b) => n + b.received, 0);
  const delivered = buckets.reduce((n, b) => n + b.delivered, 0);
  const svg = frame('Events received and delivered', `${received} received and ${delivered} delivered in the last ${BUCKETS} periods of ${step / 60e3} minutes.`, maxY, '', buckets, step);
  const slot = (W - PAD.left - PAD.right) / BUCKETS;
  const scale = (H - PAD.top - PAD.bottom) / maxY;
  buckets.forEach((b, i) => {
    const x = PAD.left + i * slot + slot * 0.15;
    const bw = slot * 0.35;
    for (const [n, color, dx] of [[b.received, '#1f5fbf', 0], [b.delivered, '#1d7a3a', bw]]) {
      if (!n) continue;
      svg.append(h('svg:rect', { x: x + dx, y: H - PAD.bottom - n * scale, width: bw, height: n * scale, fill: color },
        h('svg:title', {}, `${label(b.at, step)}: ${n} ${dx ? 'delivered' : 'received'}`)));
    }
  });
  return svg;
}

/** Median and slowest delivery latency per bucket, as a line and points. */
export function latencyChart({ buckets, step }) {
  const maxMs = Math.max(1, ...buckets.map((b) => b.max || 0));
  const unit = maxMs >= 10e3 ? 's' : 'ms';
  const div = unit === 's' ? 1000 : 1;
  const withData = buckets.filter((b) => b.p50 !== null);
  const desc = withData.length
    ? `Median delivery latency ${Math.round(withData[withData.length - 1].p50 / div)}${unit} in the latest period with deliveries; slowest ${Math.round(maxMs / div)}${unit}.`
    : 'No delivered events in this period.';
  const svg = frame('Delivery latency', desc, Math.round(maxMs / div), unit, buckets, step);
  const slot = (W - PAD.left - PAD.right) / BUCKETS;
  const scale = (H - PAD.top - PAD.bottom) / maxMs;
  const xy = (b, v) => [PAD.left + (buckets.indexOf(b) + 0.5) * slot, H - PAD.bottom - v * scale];
  if (withData.length > 1) {
    const points = withData.map((b) => xy(b, b.p50).join(',')).join(' ');
    svg.append(h('svg:polyline', { points, fill: 'none', stroke: '#8a3fbf', 'stroke-width': 2 }));
  }
  for (const b of withData) {
    const [x, y] = xy(b, b.p50);
    const [, ymax] = xy(b, b.max);
    svg.append(h('svg:line', { x1: x, y1: y, x2: x, y2: ymax, stroke: '#8a3fbf', 'stroke-dasharray': '2 2' }));
    svg.append(h('svg:circle', { cx: x, cy: y, r: 3.5, fill: '#8a3fbf' },
      h('svg:title', {}, `${label(b.at, step)}: median ${Math.round(b.p50 / div)}${unit}, slowest ${Math.round(b.max / div)}${unit}`)));
  }
  return svg;
}

/** Both charts with their legends, for an instance's events. */
export function charts(events, truncated) {
  const data = bucketize(events);
  return h('div', { class: 'charts' },
    h('div', { class: 'legend' },
      h('span', {}, h('span', { class: 'swatch received' }), 'received'),
      h('span', {}, h('span', { class: 'swatch delivered' }), 'delivered'),
      h('span', {}, h('span', { class: 'swatch latency' }), 'latency (median; dashes up to the slowest)')),
    countsChart(data),
    latencyChart(data),
    events.length ? null : h('p', { class: 'muted' }, 'No events yet: they appear here as they arrive.'),
    truncated ? h('p', { class: 'muted' }, `Drawn from the latest ${events.length} events.`) : null);
}
