// Small DOM helpers: elements are built with textContent and properties,
// never innerHTML, so nothing the API returns can run as markup.

/** h('a', {href: '#/x', class: 'b'}, 'text', child) → an element. */
export function h(tag, attrs = {}, ...children) {
  const el = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (name === 'checked' || name === 'value' || name === 'disabled') {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's content. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Says something to screen-reader users (and shows nothing). */
export function announce(message) {
  const region = document.getElementById('announce');
  // Clearing first makes a repeated message be read again.
  region.textContent = '';
  setTimeout(() => { region.textContent = message; }, 50);
}

/** A date as local time, with the UTC instant in its tooltip. */
export function when(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const d = new Date(iso);
  return h('time', { datetime: iso, title: iso }, Number.isNaN(d.getTime()) ? iso : d.toLocaleString());
}

/** JSON as a readable, scrollable, focusable block. */
export function pre(value, label) {
  const text = typeof value === 'string' ? value : JSON.stringify(value, null, 2);
  return h('pre', { tabindex: 0, 'aria-label': label }, text);
}

/** A badge for a yes/no/warning state. */
export function badge(text, kind) {
  return h('span', { class: `badge ${kind}` }, text);
}

let uniq = 0;
/** A fresh element id. */
export function newId(prefix) {
  uniq += 1;
  return `${prefix}-${uniq}`;
}

/** A labelled field: label, control, help text and the place for its error. */
export function field({ label, control, help, errorFor }) {
  control.id ||= newId('f');
  const helpEl = help ? h('p', { class: 'help', id: `${control.id}-help` }, help) : null;
  if (helpEl) control.setAttribute('aria-describedby', helpEl.id);
  if (errorFor) control.dataset.field = errorFor;
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, helpEl);
}

/** datetime-local value → RFC 3339 in UTC, or '' when empty. */
export function localToIso(value) {
  if (!value) return '';
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A Date → a datetime-local input value in local time. */
export function isoToLocal(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}
