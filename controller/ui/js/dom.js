// Building the page from data: elements are created with text content, never from HTML strings.

/** `h("a", { href, class, onclick, dataset }, ...children)` */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value == null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "value") el.value = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const STATUS_ORDER = { passing: 0, warning: 1, critical: 2 };

/** The worst of some statuses; "passing" when there are none. */
export function worst(statuses) {
  let out = "passing";
  for (const s of statuses) if ((STATUS_ORDER[s] ?? 0) > STATUS_ORDER[out]) out = s;
  return out;
}

export function badge(status, text) {
  return h("span", { class: `badge ${status}`, dataset: { status } }, text ?? status);
}

/** Passing / warning / critical counts as badges; zero counts are left out. */
export function healthCounts(passing, warning, critical) {
  const parts = [];
  if (passing) parts.push(badge("passing", `✔ ${passing} passing`));
  if (warning) parts.push(badge("warning", `⚠ ${warning} warning`));
  if (critical) parts.push(badge("critical", `✖ ${critical} critical`));
  if (!parts.length) parts.push(h("span", { class: "badge muted" }, "no checks"));
  return h("div", { class: "health" }, parts);
}

export function tags(list) {
  return (list || []).map((t) => h("span", { class: "tag" }, t));
}

export const PAGE_SIZE = 100;

/**
 * "1–100 of 1,000" with previous/next buttons. `onPage(n)` is called with the new page number.
 */
export function pager(total, page, onPage, id = "pager") {
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  const first = total ? page * PAGE_SIZE + 1 : 0;
  const last = Math.min(total, (page + 1) * PAGE_SIZE);
  return h(
    "div",
    { class: "pager", id },
    h("button", { type: "button", disabled: page <= 0, onclick: () => onPage(page - 1) }, "← Previous"),
    h("span", { class: "range" }, `${first.toLocaleString()}–${last.toLocaleString()} of ${total.toLocaleString()}`),
    h("button", { type: "button", disabled: page >= pages - 1, onclick: () => onPage(page + 1) }, "Next →"),
  );
}

export function empty(text) {
  return h("div", { class: "empty" }, text);
}

export function debounce(fn, ms) {
  let t;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

/** Rewrites the query of the current hash route without adding history or re-routing. */
export function setRouteParams(params) {
  const [path] = location.hash.split("?");
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v != null && v !== 0) query.set(k, v);
  const qs = query.toString();
  history.replaceState(null, "", qs ? `${path}?${qs}` : path);
}

/** A row cell that carries its column name for the narrow (stacked) layout. */
export function cell(label, ...children) {
  return h("td", { "data-label": label }, children);
}
