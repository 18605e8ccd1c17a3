// Events: an instance's or the organization's event log (filtered by status
// and time by the API, newest first, paged with Elements-Next-Page-Token),
// and one event with its normalized events, raw vendor body, callback body
// and every delivery attempt.

import { api } from './api.js';
import { h, fill, when, pre, announce, field, localToIso } from './dom.js';

const STATUSES = ['', 'pending', 'delivered', 'failed', 'queued'];

/** Our delivery status (pending, delivered, failed, queued); `status` is Cloud Elements' word. */
export function deliveryStatus(e) {
  return e.deliveryStatus || e.status;
}

function statusCell(e) {
  const ours = deliveryStatus(e);
  const theirs = e.deliveryStatus && e.status !== e.deliveryStatus ? e.status : null;
  return h('span', {}, h('span', { class: `badge status-${ours}` }, ours),
    theirs ? h('span', { class: 'muted', title: 'Cloud Elements status' }, ` ${theirs}`) : null);
}

function summary(events) {
  const parts = (events || []).slice(0, 3).map((e) => `${e.objectType}/${e.objectId} ${e.eventType}`);
  if ((events || []).length > 3) parts.push(`+${events.length - 3} more`);
  return parts.join(', ');
}

/**
 * An event log with its filters: one instance's (`instanceId`), or the
 * organization's (`instanceId` null, GET /instances/events).
 */
export function eventLog(instanceId) {
  const path = instanceId ? `/instances/${instanceId}/events` : '/instances/events';
  const status = h('select', { name: 'status' }, STATUSES.map((s) => h('option', { value: s }, s || 'any')));
  const from = h('input', { type: 'datetime-local', name: 'from' });
  const to = h('input', { type: 'datetime-local', name: 'to' });
  const pageSize = h('select', { name: 'pageSize' }, [20, 50, 100, 200].map((n) => h('option', { value: n }, n)));
  const apply = h('button', { type: 'submit', id: 'show-events' }, 'Show events');
  const filters = h('form', { class: 'row', 'aria-label': 'Event filters' },
    field({ label: 'Status', control: status, errorFor: 'status' }),
    field({ label: 'From (local time)', control: from, errorFor: 'since' }),
    field({ label: 'To (local time)', control: to, errorFor: 'until' }),
    field({ label: 'Page size', control: pageSize, errorFor: 'pageSize' }),
    apply);
  const state = h('p', { class: 'muted', role: 'status' });
  const body = h('tbody');
  const columns = ['Created', 'Status', ...(instanceId ? [] : ['Instance']), 'Source', 'Events', 'Attempts', 'Last answer'];
  const table = h('table', { class: 'events' },
    h('caption', { class: 'sr-only' }, 'Events, newest first'),
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))),
    body);
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Next page');
  const error = h('div', { class: 'form-error', role: 'alert' });
  let next = null;
  let shown = 0;

  async function load(reset) {
    if (reset) {
      next = null;
      shown = 0;
      body.replaceChildren();
    }
    fill(error);
    apply.disabled = true;
    more.disabled = true;
    try {
      // "To" is inclusive of its minute.
      const until = to.value ? new Date(Date.parse(localToIso(to.value)) + 59999).toISOString() : '';
      const page = await api('GET', path, {
        query: { status: status.value, since: localToIso(from.value), until, pageSize: pageSize.value, nextPage: next },
      });
      for (const e of page.data) {
        shown += 1;
        body.append(h('tr', { 'data-event-id': e.id },
          h('td', {}, h('a', { href: `#/instances/${e.instanceId}/events/${encodeURIComponent(e.id)}` }, when(e.createdDate))),
          h('td', {}, statusCell(e)),
          instanceId ? null : h('td', {}, h('a', { href: `#/instances/${e.instanceId}` }, `${e.elementKey} ${e.instanceId}`)),
          h('td', {}, e.source),
          h('td', {}, summary(e.events)),
          h('td', {}, String(e.attempts)),
          h('td', {}, e.lastStatus ? String(e.lastStatus) : (e.lastError || '—'))));
      }
      next = page.next;
      more.hidden = !next;
      fill(state, shown ? `${shown} event${shown === 1 ? '' : 's'} shown${next ? '; more on the next page' : ''}.` : 'No events match.');
    } catch (e) {
      fill(error, e.message);
      announce(`Error: ${e.message}`);
    } finally {
      apply.disabled = false;
      more.disabled = false;
    }
  }
  filters.addEventListener('submit', (e) => { e.preventDefault(); load(true); });
  more.addEventListener('click', () => load(false));
  const section = h('section', { 'aria-labelledby': 'events-heading' },
    h('h2', { id: 'events-heading' }, instanceId ? 'Events' : 'Filter'), filters, error, state, table, more);
  section.reload = () => load(true);
  load(true);
  return section;
}

/** The organization's event log, across its instances. */
export async function orgEventsPage(main) {
  fill(main,
    h('h1', { tabindex: -1 }, 'Events'),
    h('p', { class: 'muted' }, 'Every instance\'s events, newest first.'),
    eventLog(null));
}

/** The callback body as the dispatcher builds it (shared/src/events.rs, callback_body),
 * for an event not sent yet; once sent, the API gives it as notifiedData. */
export function callbackBody(e) {
  return { message: { eventId: e.eventId, instanceId: e.instanceId, instance_id: e.instanceId, elementKey: e.elementKey, events: e.events, raw: e.raw } };
}

function attemptsTable(attempts) {
  if (!attempts.length) return h('p', { class: 'muted' }, 'No delivery attempt yet.');
  return h('table', { class: 'attempts', id: 'attempts' },
    h('caption', { class: 'sr-only' }, 'Delivery attempts'),
    h('thead', {}, h('tr', {}, ['#', 'Time', 'Status', 'Latency', 'Response (start)', 'Error'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, attempts.map((a) => h('tr', {},
      h('td', {}, String(a.attempt)),
      h('td', {}, when(a.date)),
      h('td', {}, a.status ? h('span', { class: `badge ${a.status >= 200 && a.status < 300 ? 'ok' : 'bad'}` }, String(a.status)) : '—'),
      h('td', {}, a.latencyMs === null || a.latencyMs === undefined ? '—' : `${a.latencyMs} ms`),
      h('td', {}, a.response ? h('code', {}, a.response.slice(0, 200)) : '—'),
      h('td', {}, a.error || '—')))));
}

/** One event: what it says, what was sent, and every attempt. */
export async function eventPage(main, instanceId, eventId, message = '') {
  const [event, attempts] = await Promise.all([
    api('GET', `/instances/events/${encodeURIComponent(eventId)}`),
    api('GET', `/instances/${instanceId}/events/${encodeURIComponent(eventId)}/deliveries`),
  ]);
  const e = event.data;
  const sent = Array.isArray(e.notifiedData) && e.notifiedData.length ? e.notifiedData[0] : null;
  const result = h('div', { class: 'result', role: 'status', id: 'event-result' }, message);
  const retry = h('button', { type: 'button', id: 'retry' }, 'Retry now');
  retry.addEventListener('click', async () => {
    retry.disabled = true;
    try {
      const r = await api('POST', `/instances/${instanceId}/events/${encodeURIComponent(eventId)}/retry`);
      const text = `Re-queued: ${deliveryStatus(r.data)}, due now (HTTP ${r.status}).`;
      fill(result, text);
      announce(text);
      // Show the new attempt once the dispatcher has made it.
      const here = location.hash;
      setTimeout(() => { if (location.hash === here) eventPage(main, instanceId, eventId, text).catch(() => {}); }, 1500);
    } catch (err) {
      fill(result, `Retry failed: ${err.message}`);
      announce(`Error: ${err.message}`);
    } finally {
      retry.disabled = false;
    }
  });
  const refresh = h('button', { type: 'button', class: 'secondary', id: 'refresh' }, 'Refresh');
  refresh.addEventListener('click', () => eventPage(main, instanceId, eventId));
  fill(main,
    h('p', {}, h('a', { href: `#/instances/${instanceId}` }, '← Back to the instance')),
    h('h1', { tabindex: -1 }, `Event ${e.id}`),
    h('dl', { class: 'props' },
      h('dt', {}, 'Status'), h('dd', { id: 'event-status' }, statusCell(e)),
      h('dt', {}, 'Source'), h('dd', {}, e.source),
      h('dt', {}, 'Received'), h('dd', {}, when(e.createdDate)),
      h('dt', {}, 'Last change'), h('dd', {}, when(e.updatedDate)),
      h('dt', {}, 'Attempts'), h('dd', { id: 'event-attempts' }, String(e.attempts)),
      h('dt', {}, 'Next attempt'), h('dd', {}, when(e.nextAttemptDate)),
      h('dt', {}, 'Last answer'), h('dd', {}, e.lastStatus ? String(e.lastStatus) : '—'),
      h('dt', {}, 'Last error'), h('dd', {}, e.lastError || '—')),
    h('p', { class: 'row' }, retry, refresh),
    result,
    h('h2', {}, 'Delivery attempts'),
    attemptsTable(attempts.data),
    h('h2', {}, 'Normalized events'),
    h('table', { id: 'normalized' },
      h('thead', {}, h('tr', {}, ['Object type', 'Object id', 'Event type', 'Event date', 'Vendor event'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, (e.events || []).map((ev) => h('tr', {},
        h('td', {}, ev.objectType), h('td', {}, ev.objectId), h('td', {}, ev.eventType),
        h('td', {}, when(ev.eventDate)), h('td', {}, ev.vendorEventType || '—'))))),
    h('h2', {}, 'Raw vendor body'),
    h('div', { id: 'raw' }, pre(e.raw, 'Raw vendor body')),
    h('h2', {}, 'Callback body'),
    h('p', { class: 'help' }, sent
      ? 'The JSON POSTed to the callback URL, the same on every attempt (signed; see the README, Callbacks).'
      : 'Not sent yet. This is the JSON the callback URL will be sent.'),
    h('div', { id: 'callback-body' }, pre(sent || callbackBody(e), 'Callback body')));
}
