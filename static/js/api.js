// Calls to the backend and the orchestrator, over the original dashboard's paths
// (`/tracking/api/...` for the backend, `/api/bot/...` for the orchestrator), which work in
// every layout: one process, a frontend forwarding to the others, or the original nginx.
// The token (when the server wants one) is asked for once, kept in sessionStorage, and sent
// as `Authorization: Bearer` on every call and `?token=` on the WebSocket.

const TOKEN_KEY = 'armada.token';

const q = encodeURIComponent;

export const paths = {
  runs: (page, size) => `/tracking/api/runs/?page=${page}&page_size=${size}`,
  run: (id) => `/tracking/api/runs/${q(id)}`,
  summary: (id) => `/tracking/api/runs/${q(id)}/summary`,
  timeline: (id, secs) => `/tracking/api/runs/${q(id)}/timeline?bucket_secs=${secs}`,
  jobs: (run, page, size) => `/tracking/api/jobs/?run_uuid=${q(run)}&page=${page}&page_size=${size}`,
  job: (id) => `/tracking/api/jobs/${q(id)}`,
  logs: (id) => `/tracking/api/jobs/${q(id)}/logs`,
  events: (job) => `/tracking/api/events/?job_uuid=${q(job)}&page_size=100`,
  outputs: (run, page, size) => `/tracking/api/outputs/?run_uuid=${q(run)}&page=${page}&page_size=${size}`,
  start: '/api/bot/start',
  botRun: (id) => `/api/bot/runs/${q(id)}`,
  cancel: (id) => `/api/bot/runs/${q(id)}/cancel`,
  events_ws: '/tracking/ws/events/',
};

export class ApiError extends Error {
  constructor(status, detail, body) {
    super(detail);
    this.status = status;
    this.detail = detail;
    this.body = body;
  }
}

export function getToken() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
}

export function setToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch { /* storage disabled: the token lives until reload */ }
  memoryToken = token;
  for (const listener of tokenListeners) listener(token);
}

let memoryToken = '';
const tokenListeners = new Set();
export const onTokenChange = (listener) => tokenListeners.add(listener);
const currentToken = () => getToken() || memoryToken;

/** Set by main.js: shows the token dialog and resolves with the token typed. */
let askForToken = async () => { throw new ApiError(401, 'this server requires a token'); };
export function setTokenPrompt(prompt) { askForToken = prompt; }

let pendingPrompt = null;
function promptOnce(reason) {
  if (!pendingPrompt) {
    pendingPrompt = askForToken(reason).finally(() => { pendingPrompt = null; });
  }
  return pendingPrompt;
}

/**
 * fetch with the token; JSON in (`json`) and out. Throws ApiError with the server's `detail`.
 * A 401 asks for the token and retries.
 */
export async function api(path, { method = 'GET', json, body, signal } = {}) {
  for (let attempt = 0; ; attempt++) {
    const headers = { Accept: 'application/json' };
    const token = currentToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    let payload = body;
    if (json !== undefined) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(json);
    }
    let response;
    try {
      response = await fetch(path, { method, headers, body: payload, signal, cache: 'no-store' });
    } catch (error) {
      if (error.name === 'AbortError') throw error;
      throw new ApiError(0, `the server cannot be reached (${error.message})`);
    }
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (response.status === 401 && attempt < 5) {
      const reason = token ? 'That token was refused. Enter the server\'s token.' : '';
      await promptOnce(reason);
      continue;
    }
    if (!response.ok) {
      const detail = (data && typeof data.detail === 'string' && data.detail) || text || response.statusText;
      throw new ApiError(response.status, detail, data);
    }
    return data;
  }
}

/** A record, or null when the server answers 404 (deleted, or never was). */
export async function getOrNull(path) {
  try {
    return await api(path);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

/** The WebSocket URL of the live stream, with the token when there is one. */
export function liveUrl() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const token = currentToken();
  return `${scheme}//${location.host}${paths.events_ws}${token ? `?token=${q(token)}` : ''}`;
}
