// The public API, and the session. The User and Organization secrets live in
// sessionStorage only: they last for this tab, are never put in a URL, and
// are never written to the console log.

const SESSION_KEY = 'connector-events.session';

/** The API's base, on this origin: …/console/ → …/elements/api-v2 (any stage). */
export const API_BASE = new URL('../elements/api-v2', document.baseURI).pathname;

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.field = body && body.field ? body.field : null;
    this.requestId = body && body.requestId ? body.requestId : null;
  }
}

export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
  } catch {
    return null;
  }
}

export function signIn(user, org) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify({ user, org }));
}

export function signOut() {
  sessionStorage.removeItem(SESSION_KEY);
}

/** Called when the API answers 401 to a signed-in session. */
let onUnauthorized = () => {};
export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

/**
 * Calls the API. Resolves to {status, data, next} (next: the
 * Elements-Next-Page-Token); rejects with an ApiError for any non-2xx.
 */
export async function api(method, path, { query, body, auth } = {}) {
  const creds = auth || session();
  const url = new URL(API_BASE + path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, v);
  }
  const headers = { Accept: 'application/json' };
  if (creds) headers.Authorization = `User ${creds.user}, Organization ${creds.org}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
      referrerPolicy: 'no-referrer',
    });
  } catch {
    throw new ApiError(0, { message: 'The API could not be reached. Is the stack running?' });
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && !auth) onUnauthorized(error);
    throw error;
  }
  return { status: response.status, data, next: response.headers.get('Elements-Next-Page-Token') };
}

/** Every page of a list, up to `limit` items, newest first. */
export async function allPages(path, query, limit) {
  const items = [];
  let next = null;
  do {
    const page = await api('GET', path, {
      query: { ...query, pageSize: Math.min(200, limit - items.length), nextPage: next },
    });
    items.push(...page.data);
    next = page.next;
  } while (next && items.length < limit);
  return { items, truncated: Boolean(next) };
}

let catalog = null;
/** The element catalog the forms are built from (elements.json, beside this file). */
export async function elements() {
  if (!catalog) {
    const response = await fetch(new URL('elements.json', import.meta.url));
    catalog = (await response.json()).elements;
  }
  return catalog;
}
