// The console's entry point: sign-in, and a hash router over the pages.
// Pages: #/instances, #/events, #/new, #/new/{element}, #/instances/{id},
// #/instances/{id}/edit, #/instances/{id}/events/{eventId}.

import { api, session, signIn, signOut, whenUnauthorized } from './api.js';
import { h, fill, field, announce } from './dom.js';
import { listPage, pickPage, createPage, detailPage, editPage } from './instances.js';
import { eventPage, orgEventsPage } from './events.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');

function signInPage(message) {
  const user = h('input', { type: 'password', name: 'user', autocomplete: 'off', required: true });
  const org = h('input', { type: 'password', name: 'org', autocomplete: 'off', required: true });
  const error = h('div', { class: 'form-error', role: 'alert', tabindex: -1 }, message || '');
  const button = h('button', { type: 'submit' }, 'Sign in');
  const form = h('form', { 'aria-label': 'Sign in' },
    error,
    field({ label: 'User secret', control: user, help: 'The same secrets as the API\'s Authorization header. They are kept in this tab only.' }),
    field({ label: 'Organization secret', control: org }),
    button);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const creds = { user: user.value.trim(), org: org.value.trim() };
    if (!creds.user || !creds.org) {
      fill(error, 'Enter both secrets.');
      error.focus();
      return;
    }
    button.disabled = true;
    try {
      // Any authenticated call checks them; this one is the cheapest.
      await api('GET', '/instances', { query: { pageSize: 1 }, auth: creds });
      signIn(creds.user, creds.org);
      announce('Signed in.');
      if (location.hash === '#/instances') route();
      else location.hash = '#/instances';
    } catch (e) {
      fill(error, e.status === 401 ? 'These secrets were not accepted.' : e.message);
      error.focus();
      announce(`Error: ${error.textContent}`);
    } finally {
      button.disabled = false;
    }
  });
  nav.hidden = true;
  fill(main, h('h1', { tabindex: -1 }, 'Sign in'), form);
  user.focus();
}

whenUnauthorized(() => {
  signOut();
  signInPage('Your session was refused (401). Sign in again.');
});

document.getElementById('sign-out').addEventListener('click', () => {
  signOut();
  announce('Signed out.');
  signInPage();
});

async function route() {
  if (!session()) {
    signInPage();
    return;
  }
  nav.hidden = false;
  const parts = (location.hash.replace(/^#\/?/, '') || 'instances').split('/').map(decodeURIComponent);
  fill(main, h('p', { class: 'muted', role: 'status' }, 'Loading…'));
  try {
    if (parts[0] === 'new' && parts.length === 1) await pickPage(main);
    else if (parts[0] === 'new') await createPage(main, parts[1]);
    else if (parts[0] === 'instances' && parts.length === 1) await listPage(main);
    else if (parts[0] === 'events' && parts.length === 1) await orgEventsPage(main);
    else if (parts[0] === 'instances' && parts[2] === 'edit') await editPage(main, parts[1]);
    else if (parts[0] === 'instances' && parts[2] === 'events' && parts[3]) await eventPage(main, parts[1], parts[3]);
    else if (parts[0] === 'instances') await detailPage(main, parts[1]);
    else throw new Error(`No page at ${location.hash}`);
  } catch (e) {
    if (e.status === 401) return;
    fill(main, h('h1', { tabindex: -1 }, 'Something went wrong'), h('p', { class: 'form-error', role: 'alert' }, e.message));
  }
  // Keyboard and screen-reader users start at the new page's heading.
  const heading = main.querySelector('h1');
  if (heading && !main.contains(document.activeElement)) heading.focus();
  document.title = `${heading ? heading.textContent : 'Console'} · connector-events`;
}

window.addEventListener('hashchange', route);
route();
