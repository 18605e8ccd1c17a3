// Instances: the list, the element picker and create form, one instance
// (state, webhook URL, actions, charts, event log), edit and delete.

import { api, allPages, elements } from './api.js';
import { h, fill, when, badge, announce, field, localToIso, isoToLocal } from './dom.js';
import { instanceForm } from './forms.js';
import { eventLog } from './events.js';
import { charts } from './chart.js';

const CHART_EVENTS = 1000;

/** The answer to the last create, for its one-time token. */
let justCreated = null;

function elementName(catalog, key) {
  const e = catalog.find((x) => x.key === key);
  return e ? e.name : key;
}

function validity(i) {
  return i.valid === false
    ? h('span', {}, badge('invalid', 'bad'), ' ', i.invalidReason || '')
    : badge('valid', 'ok');
}

function eventsState(i) {
  if (!i.eventsEnabled) return badge('events off', 'warn');
  if (i.eventsPaused) return h('span', {}, badge('paused', 'bad'), ' ', pausedText(i.eventsPaused));
  return badge('events on', 'ok');
}

function pausedText(paused) {
  if (typeof paused === 'string') return paused;
  if (typeof paused !== 'object') return 'by a 410 from the callback';
  const since = paused.since || paused.at || paused.pausedAt;
  return `by a ${paused.status || 410} from the callback${since ? ` since ${new Date(since).toLocaleString()}` : ''}`;
}

function health(i) {
  const w = i.webhookHealth;
  if (!w) return '—';
  const parts = [];
  for (const k of ['registered', 'active', 'reactivated', 'recreated']) if (w[k] !== undefined) parts.push(`${w[k]} ${k}`);
  return h('span', {}, parts.join(', '), w.checkedAt ? h('span', { class: 'muted' }, ' (checked ', when(w.checkedAt), ')') : null);
}

function modeText(i) {
  if (i.eventVendorType === 'polling') return `polling every ${i.eventPollerRefreshInterval || 15} min`;
  if (i.eventVendorType === 'webhook' || i.webhookUrl) return i.eventReconciliationInterval ? `webhooks, reconciled every ${i.eventReconciliationInterval} min` : 'webhooks';
  return '—';
}

/** The list of the organization's instances. */
export async function listPage(main) {
  const catalog = await elements();
  const body = h('tbody');
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'More instances');
  let next = null;
  async function load() {
    const page = await api('GET', '/instances', { query: { pageSize: 50, nextPage: next } });
    for (const i of page.data) {
      body.append(h('tr', { 'data-instance-id': i.id },
        h('td', {}, h('a', { href: `#/instances/${i.id}` }, i.name)),
        h('td', {}, elementName(catalog, i.element.key)),
        h('td', {}, modeText(i)),
        h('td', {}, eventsState(i)),
        h('td', {}, validity(i)),
        h('td', {}, health(i)),
        h('td', {}, when(i.createdDate))));
    }
    next = page.next;
    more.hidden = !next;
    return page.data.length;
  }
  more.addEventListener('click', () => load().catch((e) => announce(`Error: ${e.message}`)));
  const count = await load();
  fill(main,
    h('h1', { tabindex: -1 }, 'Instances'),
    h('p', {}, h('a', { class: 'button', href: '#/new' }, 'New instance')),
    count
      ? h('table', { class: 'instances' },
        h('caption', { class: 'sr-only' }, 'Instances, newest first'),
        h('thead', {}, h('tr', {}, ['Name', 'Element', 'Events from', 'Events', 'Valid', 'Webhook health', 'Created'].map((c) => h('th', { scope: 'col' }, c)))),
        body)
      : h('p', {}, 'No instances yet. Create one to start receiving events.'),
    more);
}

/** Which element to create an instance for. */
export async function pickPage(main) {
  const catalog = await elements();
  fill(main,
    h('h1', { tabindex: -1 }, 'New instance'),
    h('p', {}, 'Choose the store platform to connect.'),
    h('div', { class: 'cards' }, catalog.map((e) => h('div', { class: 'card' },
      h('h2', {}, e.name),
      h('p', { class: 'muted' }, e.modes.map((m) => (m === 'polling' ? 'polling' : 'webhooks')).join(' or ')),
      h('a', { class: 'button', href: `#/new/${e.key}`, 'aria-label': `Create a ${e.name} instance` }, `Create a ${e.name} instance`)))));
}

/** The create form for one element. */
export async function createPage(main, key) {
  const catalog = await elements();
  const element = catalog.find((e) => e.key === key);
  if (!element) throw new Error(`Unknown element ${key}`);
  const form = instanceForm(element, null, async (body) => {
    const created = await api('POST', '/instances', { body });
    announce(`Instance ${created.data.name} created.`);
    // The token is shown once, on the instance's page, and never put in the URL.
    justCreated = created.data;
    location.hash = `#/instances/${created.data.id}`;
  });
  fill(main, h('h1', { tabindex: -1 }, `New ${element.name} instance`), form);
}

function copyBox(label, value) {
  const input = h('input', { type: 'text', readonly: true, value, id: 'webhook-url' });
  const button = h('button', { type: 'button', class: 'secondary' }, 'Copy');
  button.addEventListener('click', async () => {
    // The selection-based copy works on any origin and never waits for a
    // permission prompt; the Clipboard API is the fallback.
    input.focus();
    input.select();
    let copied = false;
    try {
      copied = document.execCommand('copy');
    } catch {
      copied = false;
    }
    if (!copied && navigator.clipboard) {
      copied = await Promise.race([
        navigator.clipboard.writeText(value).then(() => true, () => false),
        new Promise((resolve) => { setTimeout(() => resolve(false), 1000); }),
      ]);
    }
    button.textContent = copied ? 'Copied' : 'Press Ctrl+C to copy';
    announce(copied ? 'Webhook URL copied.' : 'The URL is selected: press Ctrl+C to copy it.');
    button.focus();
  });
  return h('div', { class: 'field' }, h('label', { for: input.id }, label), h('div', { class: 'copy' }, input, button));
}

function resultBox() {
  return h('div', { class: 'result', role: 'status', tabindex: -1, id: 'action-result' });
}

function pollReport(r) {
  const parts = [`outcome: ${r.outcome || 'done'}`];
  for (const [k, v] of Object.entries(r)) {
    if (k !== 'outcome' && (typeof v === 'number' || typeof v === 'string')) parts.push(`${k}: ${v}`);
  }
  return parts.join(', ');
}

/** One instance: its state, webhook URL, actions, charts and event log. */
export async function detailPage(main, id) {
  const created = justCreated && String(justCreated.id) === String(id) ? justCreated : null;
  justCreated = null;
  const [catalog, got] = await Promise.all([elements(), api('GET', `/instances/${id}`)]);
  const i = got.data;
  const element = catalog.find((e) => e.key === i.element.key) || { name: i.element.key, poller: null };
  const result = resultBox();
  const act = (button, run) => button.addEventListener('click', async () => {
    button.disabled = true;
    fill(result, '…');
    try {
      const text = await run();
      fill(result, text);
      announce(text);
    } catch (e) {
      fill(result, `${button.textContent} failed: ${e.message}${e.status ? ` (HTTP ${e.status})` : ''}`);
      announce(`Error: ${e.message}`);
    } finally {
      button.disabled = false;
    }
  });

  const log = eventLog(id);
  const chartBox = h('div', { id: 'charts' }, h('p', { class: 'muted' }, 'Loading…'));
  const drawCharts = async () => {
    try {
      const { items, truncated } = await allPages(`/instances/${id}/events`, {}, CHART_EVENTS);
      fill(chartBox, charts(items, truncated));
    } catch (e) {
      fill(chartBox, h('p', { class: 'form-error' }, e.message));
    }
  };

  const actions = [];
  const polled = i.eventsEnabled && (i.eventVendorType === 'polling' || i.eventReconciliationInterval);
  if (polled) {
    const poll = h('button', { type: 'button', id: 'poll-now' }, 'Poll now');
    act(poll, async () => {
      const r = await api('POST', `/instances/${id}/events/poll`);
      setTimeout(() => { log.reload(); drawCharts(); }, 1000);
      return `Polled: ${pollReport(r.data)}.`;
    });
    actions.push(poll);
  }
  const since = h('input', { type: 'datetime-local', value: isoToLocal(new Date(Date.now() - 86400e3)) });
  const recover = h('button', { type: 'button', class: 'secondary', id: 'recover' }, 'Recover');
  act(recover, async () => {
    const r = await api('POST', `/instances/${id}/events/recover`, { query: { since: localToIso(since.value) } });
    setTimeout(() => { log.reload(); }, 1000);
    return `Recovered: ${r.data.requeued} event(s) re-queued since ${new Date(r.data.since).toLocaleString()}; events ${r.data.eventsPaused ? 'still paused' : 'flowing'}.`;
  });
  const del = h('button', { type: 'button', class: 'danger' }, 'Delete…');
  const confirmBox = h('span', { class: 'confirm', hidden: true },
    h('span', {}, 'Delete this instance and its store webhooks?'));
  const yes = h('button', { type: 'button', class: 'danger' }, 'Yes, delete');
  const no = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
  confirmBox.append(yes, no);
  del.addEventListener('click', () => { confirmBox.hidden = false; no.focus(); });
  no.addEventListener('click', () => { confirmBox.hidden = true; del.focus(); });
  yes.addEventListener('click', async () => {
    try {
      await api('DELETE', `/instances/${id}`);
      announce(`Instance ${i.name} deleted.`);
      location.hash = '#/instances';
    } catch (e) {
      fill(result, `Delete failed: ${e.message}`);
    }
  });

  fill(main,
    h('p', {}, h('a', { href: '#/instances' }, '← All instances')),
    h('h1', { tabindex: -1 }, i.name),
    created ? h('div', { class: 'result', role: 'status', id: 'created' },
      `Instance created. Its token is shown only now: ${created.token}`) : null,
    h('dl', { class: 'props' },
      h('dt', {}, 'Id'), h('dd', { id: 'instance-id' }, String(i.id)),
      h('dt', {}, 'Element'), h('dd', {}, element.name),
      h('dt', {}, 'Events from'), h('dd', {}, modeText(i)),
      h('dt', {}, 'Events'), h('dd', {}, eventsState(i)),
      h('dt', {}, 'State'), h('dd', {}, validity(i)),
      h('dt', {}, 'Callback URL'), h('dd', {}, i.eventsNotificationCallbackUrl || '—'),
      i.webhookHealth ? [h('dt', {}, 'Webhook health'), h('dd', {}, health(i))] : null,
      h('dt', {}, 'Tags'), h('dd', {}, (i.tags || []).join(', ') || '—'),
      h('dt', {}, 'Created'), h('dd', {}, when(i.createdDate)),
      h('dt', {}, 'Updated'), h('dd', {}, when(i.updatedDate))),
    i.webhookUrl ? copyBox('Webhook URL (paste it into the store\'s back office)', i.webhookUrl) : null,
    i.webhookUrl && element.webhookNote ? h('p', { class: 'help' }, element.webhookNote) : null,
    h('h2', {}, 'Actions'),
    h('div', { class: 'row' },
      actions,
      field({ label: 'Recover since (local time)', control: since, errorFor: 'since' }),
      recover,
      h('a', { class: 'button secondary', href: `#/instances/${id}/edit` }, 'Edit'),
      del, confirmBox),
    result,
    h('h2', {}, 'Activity'),
    chartBox,
    log);
  drawCharts();
}

/** Edit (PATCH) an instance with its element's form. */
export async function editPage(main, id) {
  const [catalog, got] = await Promise.all([elements(), api('GET', `/instances/${id}`)]);
  const i = got.data;
  const element = catalog.find((e) => e.key === i.element.key);
  const form = instanceForm(element, i, async (body) => {
    await api('PATCH', `/instances/${id}`, { body });
    announce('Changes saved.');
    location.hash = `#/instances/${id}`;
  });
  fill(main,
    h('p', {}, h('a', { href: `#/instances/${id}` }, '← Back to the instance')),
    h('h1', { tabindex: -1 }, `Edit ${i.name}`),
    h('p', { class: 'muted' }, 'Secrets show as ******** and are kept unless you type a new value.'),
    form);
}
