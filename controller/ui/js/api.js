// The HTTP API, as any Consul client reads it: plain requests, and watches driven by blocking
// queries (?index=&wait=) that tell the page when something changed.

const listeners = new Set();
const deniedListeners = new Set();
let reachable = true;
const TOKEN_KEY = "census-acl-token";

/** The ACL token this browser sends (kept in localStorage, as Consul's UI keeps it). */
export function token() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(secret) {
  if (secret) localStorage.setItem(TOKEN_KEY, secret);
  else localStorage.removeItem(TOKEN_KEY);
}

/** Calls `fn(message)` when a request is refused (403): the page says so plainly. */
export function onDenied(fn) {
  deniedListeners.add(fn);
}

/** Calls `fn(reachable, message)` whenever the agent becomes reachable or unreachable. */
export function onReachability(fn) {
  listeners.add(fn);
}

function setReachable(ok, message) {
  if (ok === reachable) return;
  reachable = ok;
  for (const fn of listeners) fn(ok, message);
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
  }
}

/** One request. Network failures mark the agent unreachable; HTTP errors throw ApiError. */
export async function request(method, path, { body, signal } = {}) {
  let response;
  try {
    const headers = token() ? { "X-Consul-Token": token() } : {};
    response = await fetch(path, { method, body, signal, headers, cache: "no-store" });
  } catch (e) {
    if (signal?.aborted) throw e;
    setReachable(false, "Cannot reach the census agent — retrying");
    throw new ApiError(0, "cannot reach the census agent");
  }
  setReachable(true);
  if (!response.ok && response.status !== 404) {
    const text = (await response.text()).trim();
    if (response.status === 403) for (const fn of deniedListeners) fn(text);
    throw new ApiError(response.status, text || `${response.status} ${response.statusText}`);
  }
  return response;
}

/** GET as JSON; `null` for a 404. */
export async function getJSON(path, signal) {
  const response = await request("GET", path, { signal });
  if (response.status === 404) return null;
  return response.json();
}

/** PUT a body; answers the parsed JSON (`true`/`false` for KV writes). */
export async function put(path, body, signal) {
  const response = await request("PUT", path, { body, signal });
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

export async function del(path, signal) {
  const response = await request("DELETE", path, { signal });
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
  });

/**
 * Keeps `onData(value, index)` current with `path` until `signal` aborts: a blocking query waits
 * on the server for the next change. A 404 answers `null`. Errors go to `onError` and are retried
 * with backoff (1 s to 5 s).
 */
export async function watch(path, onData, { signal, onError, wait = "60s" } = {}) {
  let index = 0;
  let backoff = 1000;
  const sep = path.includes("?") ? "&" : "?";
  while (!signal?.aborted) {
    try {
      const url = index ? `${path}${sep}index=${index}&wait=${wait}` : path;
      const response = await request("GET", url, { signal });
      const next = Number(response.headers.get("X-Consul-Index") || 0);
      const value = response.status === 404 ? null : await response.json();
      if (signal?.aborted) return;
      // An index that went backwards (snapshot restore, new cluster) restarts from scratch.
      const changed = index === 0 || next !== index;
      index = next < index ? 0 : next;
      backoff = 1000;
      if (changed) onData(value, next);
    } catch (e) {
      if (signal?.aborted) return;
      onError?.(e);
      await sleep(backoff, signal);
      backoff = Math.min(backoff * 2, 5000);
      index = 0;
    }
  }
}

/** Calls `fn` now and every `ms` until `signal` aborts (for reads that cannot block). */
export async function poll(fn, ms, signal) {
  while (!signal?.aborted) {
    try {
      await fn();
    } catch (e) {
      // Reachability is already reported by `request`; keep polling.
    }
    await sleep(ms, signal);
  }
}

/** A KV value (base64) as text; `null` when it is not UTF-8. */
export function decodeValue(b64) {
  if (b64 == null) return "";
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

/** A path segment for the URL: every character escaped but `/`. */
export function encodePath(key) {
  return key.split("/").map(encodeURIComponent).join("/");
}
