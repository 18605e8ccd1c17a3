// The instance form, one per element: its configuration fields, secrets as
// password inputs, the event.* settings, the resources to poll as checkboxes
// (built into the Cloud Elements poller configuration), and errors placed
// next to the field the API names.

import { h, field, fill, announce } from './dom.js';

const REDACTED = '********';

/** The poller configuration Cloud Elements' UI built for the checked resources. */
export function pollerConfiguration(element, resources) {
  const p = element.poller;
  const config = {};
  for (const name of resources) {
    config[name] = {
      url: `/hubs/ecommerce/${name}`,
      idField: 'id',
      datesConfiguration: {
        updatedAtField: p.updatedAtField,
        updatedAtFormat: p.format,
        createdAtField: p.createdAtField,
        createdAtFormat: p.format,
      },
    };
  }
  return config;
}

/** The resources an existing poller configuration polls, by hub path. */
function polledResources(element, configured) {
  let cfg = configured;
  if (typeof cfg === 'string') {
    try { cfg = JSON.parse(cfg); } catch { cfg = null; }
  }
  if (!cfg || typeof cfg !== 'object') return element.poller.resources;
  const names = Object.values(cfg).map((r) => String((r && r.url) || '').split('?')[0].split('/').pop());
  return element.poller.resources.filter((r) => names.includes(r));
}

function input(spec, value, mode) {
  const type = spec.secret ? 'password' : spec.type || 'text';
  const attrs = {
    type,
    name: spec.key,
    value: value ?? '',
    placeholder: spec.placeholder,
    autocomplete: spec.secret ? 'new-password' : 'off',
    spellcheck: 'false',
  };
  if (spec.required && mode === 'create') attrs.required = true;
  if (type === 'number') attrs.min = 1;
  return h('input', attrs);
}

function configField(spec, cfg, mode) {
  const control = input(spec, cfg[spec.key], mode);
  return field({
    label: spec.label + (spec.required ? '' : ' (optional)'),
    control,
    help: spec.help,
    errorFor: `configuration.${spec.key}`,
  });
}

/**
 * Builds the form. `instance` is null to create one. `submit(body)` returns
 * a promise; its ApiError is shown next to the field it names.
 */
export function instanceForm(element, instance, submit) {
  const mode = instance ? 'edit' : 'create';
  const cfg = instance ? instance.configuration || {} : {};
  const currentMode = cfg['event.vendor.type'] === 'webhooks' ? 'webhook'
    : cfg['event.vendor.type'] || (instance && instance.eventVendorType) || element.modes[0];
  const formError = h('div', { class: 'form-error', role: 'alert', tabindex: -1 });

  const name = h('input', { type: 'text', name: 'name', value: instance ? instance.name : '', required: true, autocomplete: 'off' });
  const tags = h('input', { type: 'text', name: 'tags', value: instance ? (instance.tags || []).join(', ') : '', autocomplete: 'off' });
  const about = h('fieldset', {},
    h('legend', {}, 'Instance'),
    field({ label: 'Name', control: name, errorFor: 'name' }),
    field({ label: 'Tags (optional, comma-separated)', control: tags, errorFor: 'tags' }));

  const store = element.fields.length
    ? h('fieldset', {}, h('legend', {}, `${element.name} connection`), element.fields.map((f) => configField(f, cfg, mode)))
    : null;

  const enabledValue = instance ? instance.eventsEnabled : true;
  const enabled = h('input', { type: 'checkbox', name: 'event.notification.enabled', checked: enabledValue, 'data-field': 'configuration.event.notification.enabled' });
  const callback = h('input', { type: 'url', name: 'event.notification.callback.url', value: cfg['event.notification.callback.url'] || '', placeholder: 'https://mycoolapp.com/events', autocomplete: 'off' });
  const signature = h('input', { type: 'password', name: 'event.notification.signature.key', value: cfg['event.notification.signature.key'] || '', autocomplete: 'new-password' });
  const modeRadios = element.modes.length > 1
    ? h('fieldset', { 'data-field': 'configuration.event.vendor.type' }, h('legend', {}, 'How changes are found'),
      h('div', { class: 'checks' }, element.modes.map((m) => h('label', {},
        h('input', { type: 'radio', name: 'event.vendor.type', value: m, checked: m === currentMode }), ' ',
        m === 'polling' ? 'Polling (we ask the store)' : 'Webhooks (the store tells us)'))))
    : null;
  const events = h('fieldset', {},
    h('legend', {}, 'Events'),
    h('div', { class: 'field' }, h('label', {}, enabled, ' Events enabled (event.notification.enabled)')),
    field({ label: 'Callback URL (event.notification.callback.url)', control: callback, errorFor: 'configuration.event.notification.callback.url', help: 'Where each normalized, signed notification is POSTed' }),
    field({ label: 'Signature key (event.notification.signature.key, optional)', control: signature, errorFor: 'configuration.event.notification.signature.key', help: 'Signs every callback (Elements-Webhook-Signature and Standard Webhooks)' }),
    modeRadios);

  let polling = null;
  let interval = null;
  if (element.poller) {
    interval = h('input', { type: 'number', name: 'event.poller.refresh_interval', min: 1, value: cfg['event.poller.refresh_interval'] ?? (instance && instance.eventPollerRefreshInterval) ?? 15 });
    const chosen = polledResources(element, cfg['event.poller.configuration']);
    polling = h('fieldset', { class: 'polling' },
      h('legend', {}, 'Polling'),
      field({ label: 'Refresh interval, minutes (event.poller.refresh_interval)', control: interval, errorFor: 'configuration.event.poller.refresh_interval' }),
      h('fieldset', { 'data-field': 'configuration.event.poller.configuration' },
        h('legend', {}, 'Resources to poll'),
        h('div', { class: 'checks' }, element.poller.resources.map((r) => h('label', {},
          h('input', { type: 'checkbox', name: 'resource', value: r, checked: chosen.includes(r) }), ' ', r)))));
  }
  const webhooks = h('fieldset', { class: 'webhooks' },
    h('legend', {}, 'Webhooks'),
    h('p', { class: 'help' }, element.webhookNote),
    element.webhookFields.map((f) => configField(f, cfg, mode)));

  const button = h('button', { type: 'submit' }, instance ? 'Save changes' : 'Create instance');
  const form = h('form', { novalidate: true, 'aria-label': `${element.name} instance` },
    formError, about, store, events, polling, webhooks, button);

  const chosenMode = () => {
    const checked = form.querySelector('input[name="event.vendor.type"]:checked');
    return checked ? checked.value : element.modes[0];
  };
  const showMode = () => {
    const m = chosenMode();
    if (polling) polling.hidden = m !== 'polling';
    webhooks.hidden = m !== 'webhook' || (!element.webhookFields.length && !element.webhookNote);
  };
  form.addEventListener('change', showMode);
  showMode();

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const body = collect(form, element, instance, chosenMode());
    if (body.error) {
      showError(form, body.error.field, body.error.message);
      return;
    }
    button.disabled = true;
    try {
      await submit(body);
    } catch (error) {
      showError(form, error.field, error.message, error.status);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

/** The request body from the form: only what was filled in, as Cloud Elements took it. */
function collect(form, element, instance, mode) {
  const value = (n) => (form.elements.namedItem(n) ? form.elements.namedItem(n).value.trim() : '');
  const configuration = {};
  const before = instance ? instance.configuration || {} : {};
  const specs = [...element.fields, ...(mode === 'webhook' ? element.webhookFields : [])];
  for (const spec of specs) {
    const v = value(spec.key);
    if (v) configuration[spec.key] = spec.type === 'number' ? String(Number(v)) : v;
    else if (spec.key in before) configuration[spec.key] = null; // PATCH: removes it
  }
  configuration['event.notification.enabled'] = form.elements.namedItem('event.notification.enabled').checked;
  for (const key of ['event.notification.callback.url', 'event.notification.signature.key']) {
    const v = value(key);
    if (v) configuration[key] = v;
    else if (key in before) configuration[key] = null;
  }
  if (element.modes.length > 1) configuration['event.vendor.type'] = mode;
  if (mode === 'polling' && element.poller) {
    const resources = [...form.querySelectorAll('input[name=resource]:checked')].map((c) => c.value);
    if (!resources.length && configuration['event.notification.enabled']) {
      return { error: { field: 'configuration.event.poller.configuration', message: 'Choose at least one resource to poll.' } };
    }
    // Cloud Elements sent the interval as a string; so do we.
    configuration['event.poller.refresh_interval'] = value('event.poller.refresh_interval') || '15';
    configuration['event.poller.configuration'] = pollerConfiguration(element, resources);
  } else if ('event.poller.configuration' in before) {
    configuration['event.poller.configuration'] = null;
  }
  const tags = value('tags').split(',').map((t) => t.trim()).filter(Boolean);
  const body = { name: value('name'), tags, configuration };
  if (!instance) {
    body.element = { key: element.key };
    // Nothing to remove on create.
    for (const [k, v] of Object.entries(configuration)) if (v === null) delete configuration[k];
  }
  return body;
}

export function clearErrors(form) {
  for (const el of form.querySelectorAll('.field-error')) el.remove();
  for (const el of form.querySelectorAll('[aria-invalid]')) {
    el.removeAttribute('aria-invalid');
    const ids = (el.getAttribute('aria-describedby') || '').split(' ').filter((id) => !id.endsWith('-error'));
    if (ids.length) el.setAttribute('aria-describedby', ids.join(' '));
    else el.removeAttribute('aria-describedby');
  }
  fill(form.querySelector('.form-error'));
}

/**
 * Puts an error next to the control the API's `field` names (the longest
 * data-field that is a prefix of it), focuses that control and announces it.
 * Without a match, the error goes to the top of the form.
 */
export function showError(form, fieldName, message, status) {
  let target = null;
  if (fieldName) {
    let best = -1;
    for (const el of form.querySelectorAll('[data-field]')) {
      const f = el.dataset.field;
      if ((fieldName === f || fieldName.startsWith(`${f}.`)) && f.length > best && !el.closest('[hidden]')) {
        target = el;
        best = f.length;
      }
    }
  }
  if (!target) {
    const top = form.querySelector('.form-error');
    fill(top, status ? `${message} (HTTP ${status})` : message);
    top.focus();
    announce(`Error: ${message}`);
    return;
  }
  const id = `${target.id || target.dataset.field.replace(/\W/g, '-')}-error`;
  const error = h('p', { class: 'field-error', id }, message);
  if (target.tagName === 'FIELDSET') {
    target.append(error);
    target.setAttribute('aria-describedby', id);
    const first = target.querySelector('input');
    if (first) first.focus();
  } else {
    target.closest('.field').append(error);
    target.setAttribute('aria-invalid', 'true');
    const described = target.getAttribute('aria-describedby');
    target.setAttribute('aria-describedby', described ? `${described} ${id}` : id);
    target.focus();
  }
  const label = target.tagName === 'FIELDSET'
    ? target.querySelector('legend').textContent
    : (target.labels && target.labels[0] ? target.labels[0].textContent : fieldName);
  announce(`Error in ${label}: ${message}`);
}

export { REDACTED };
