// Key/Value: a folder tree by "/", a key's value with a JSON view, create/edit/delete with CAS so
// no edit silently overwrites another, and a search across every key and value.

import { watch, getJSON, put, del, decodeValue, encodePath, ApiError } from "./api.js";
import { h, fill, pager, empty, debounce, PAGE_SIZE } from "./dom.js";

const kvUrl = (key) => `/v1/kv/${encodePath(key)}`;
const kvRoute = (key) => `#/kv/${encodePath(key)}`;

function crumbs(path) {
  const parts = path.split("/").filter(Boolean);
  const links = [h("a", { href: "#/kv/" }, "Key/Value")];
  let prefix = "";
  parts.forEach((part, i) => {
    const last = i === parts.length - 1;
    prefix += part + (last && !path.endsWith("/") ? "" : "/");
    links.push(" / ", last ? part : h("a", { href: kvRoute(prefix) }, part));
  });
  return h("div", { class: "crumbs" }, links);
}

/** JSON check for the editor: "" when valid, else the parser's message. */
export function jsonProblem(text) {
  try {
    JSON.parse(text);
    return "";
  } catch (e) {
    return e.message;
  }
}

function editor({ value = "", json = false, onSave, saveLabel = "Save" }) {
  const area = h("textarea", { id: "kv-value", "aria-label": "Value", spellcheck: "false" });
  area.value = value;
  const validate = h("input", { type: "checkbox", id: "kv-json", checked: json });
  const problem = h("span", { class: "error-text", id: "kv-problem", role: "status" });
  const message = h("span", { class: "error-text", id: "kv-message", role: "status" });
  const save = h("button", { type: "submit", class: "primary", id: "kv-save" }, saveLabel);
  const check = () => {
    const why = validate.checked && area.value.trim() ? jsonProblem(area.value) : "";
    problem.textContent = why && `Invalid JSON: ${why}`;
    save.disabled = Boolean(why);
  };
  area.addEventListener("input", check);
  validate.addEventListener("change", check);
  check();
  const form = h(
    "form", { class: "form-grid", id: "kv-form" },
    area,
    h("div", { class: "form-actions" }, save, h("label", { class: "check" }, validate, "Validate as JSON"), problem, message),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    check();
    if (save.disabled) return;
    save.disabled = true;
    message.textContent = "";
    try {
      await onSave(area.value, message);
    } catch (e) {
      message.textContent = e instanceof ApiError ? e.message : String(e);
    } finally {
      check();
    }
  });
  return { form, area };
}

/** A delete button that asks once more on the page (no browser dialog). */
function deleteButton(label, onDelete) {
  const button = h("button", { type: "button", class: "danger", id: "kv-delete" }, label);
  let armed = false;
  button.addEventListener("click", async () => {
    if (!armed) {
      armed = true;
      button.textContent = "Click again to delete";
      button.classList.add("confirm");
      return;
    }
    button.disabled = true;
    await onDelete();
  });
  button.addEventListener("blur", () => {
    armed = false;
    button.textContent = label;
    button.classList.remove("confirm");
  });
  return button;
}

function searchBox(results, signal) {
  const input = h("input", {
    type: "search", id: "kv-search", placeholder: "Search all keys and values", "aria-label": "Search keys and values",
    "data-search": true,
  });
  let cache = null;
  const run = async () => {
    const q = input.value.trim().toLowerCase();
    if (!q) {
      results.hidden = true;
      fill(results);
      return;
    }
    results.hidden = false;
    if (!cache || Date.now() - cache.at > 3000) {
      const pairs = (await getJSON("/v1/kv/?recurse", signal)) || [];
      cache = { at: Date.now(), rows: pairs.map((p) => ({ key: p.Key, text: decodeValue(p.Value) })) };
    }
    const hits = cache.rows.filter((r) => r.key.toLowerCase().includes(q) || (r.text || "").toLowerCase().includes(q));
    fill(
      results,
      h("h2", {}, `${hits.length.toLocaleString()} match${hits.length === 1 ? "" : "es"} for “${input.value.trim()}”`),
      hits.length ? h("ul", { class: "card", id: "kv-results" }, hits.slice(0, PAGE_SIZE).map((r) => h(
        "li", {},
        h("a", { href: kvRoute(r.key) }, highlight(r.key, q)),
        r.text && r.text.toLowerCase().includes(q) ? h("div", { class: "snippet" }, highlight(snippet(r.text, q), q)) : null,
      ))) : empty("Nothing matches."),
      hits.length > PAGE_SIZE ? h("p", { class: "meta-line" }, `Showing the first ${PAGE_SIZE}; refine the search to see the rest.`) : null,
    );
  };
  const onSearch = debounce(run, 200);
  input.addEventListener("input", onSearch);
  input.addEventListener("change", onSearch);
  return input;
}

function snippet(text, q) {
  const at = text.toLowerCase().indexOf(q);
  const start = Math.max(0, at - 40);
  return (start ? "…" : "") + text.slice(start, at + q.length + 60) + (at + q.length + 60 < text.length ? "…" : "");
}

function highlight(text, q) {
  const at = text.toLowerCase().indexOf(q);
  if (at < 0) return text;
  return [text.slice(0, at), h("mark", {}, text.slice(at, at + q.length)), text.slice(at + q.length)];
}

export function kvFolderPage(main, prefix, signal) {
  let page = 0;
  let keys = null;
  const results = h("div", { id: "kv-search-results", hidden: true });
  const listSlot = h("div", { id: "kv-list" });
  const pagerSlot = h("div");
  const createSlot = h("div");
  const newButton = h("button", { type: "button", class: "primary", id: "kv-create" }, "Create");
  newButton.addEventListener("click", () => {
    const name = h("input", { type: "text", id: "kv-key", "aria-label": "Key", placeholder: "name, or folder/ to create a folder" });
    const { form } = editor({
      saveLabel: "Create",
      onSave: async (value, message) => {
        const rel = name.value.trim();
        if (!rel) {
          message.textContent = "Give the key a name.";
          return;
        }
        const key = prefix + rel;
        const created = await put(`${kvUrl(key)}?cas=0`, rel.endsWith("/") ? "" : value, signal);
        if (created === false) {
          message.textContent = `${key} already exists.`;
          return;
        }
        location.hash = kvRoute(key);
      },
    });
    form.prepend(name);
    fill(createSlot, h("section", { class: "card" }, h("h2", {}, `New key in ${prefix || "/"}`), form));
    name.focus();
  });
  fill(
    main,
    crumbs(prefix),
    h("h1", {}, prefix ? prefix : "Key/Value"),
    h("div", { class: "toolbar" }, h("div", { class: "grow" }, searchBox(results, signal)), newButton,
      prefix ? deleteButton("Delete folder", async () => {
        await del(`${kvUrl(prefix)}?recurse`, signal);
        location.hash = kvRoute(prefix.replace(/[^/]*\/$/, ""));
      }) : null),
    createSlot,
    results,
    listSlot,
    pagerSlot,
  );

  function draw() {
    if (!keys) return;
    if (!keys.length) {
      fill(listSlot, empty(prefix ? "This folder is empty." : "No keys yet. Create one."));
      fill(pagerSlot);
      return;
    }
    const pages = Math.max(1, Math.ceil(keys.length / PAGE_SIZE));
    page = Math.min(page, pages - 1);
    fill(listSlot, h(
      "table", { class: "list", id: "kv-keys" },
      h("tbody", {}, keys.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE).map((k) => {
        const rel = k.slice(prefix.length);
        const folder = k.endsWith("/");
        return h("tr", { dataset: { key: k } }, h("td", { class: "name" },
          h("a", { href: kvRoute(k) }, folder ? `📁 ${rel}` : rel)));
      })),
    ));
    fill(pagerSlot, keys.length > PAGE_SIZE ? pager(keys.length, page, (p) => { page = p; draw(); }) : null);
  }

  watch(`${kvUrl(prefix)}?keys&separator=/`, (data) => {
    keys = (data || []).filter((k) => k !== prefix);
    draw();
  }, { signal });
}

export function kvKeyPage(main, key, signal) {
  const view = h("div", { id: "kv-view" });
  const notice = h("div");
  fill(main, crumbs(key), h("h1", { class: "mono" }, key), notice, view);
  let current = null;
  let dirty = false;
  let tab = "text";

  function render(pair) {
    const text = decodeValue(pair.Value);
    const isJson = text !== null && text.trim() !== "" && !jsonProblem(text);
    const facts = h(
      "dl", { class: "facts" },
      [["Flags", pair.Flags], ["Create index", pair.CreateIndex], ["Modify index", pair.ModifyIndex],
        ["Lock index", pair.LockIndex], ["Session", pair.Session || "none"]]
        .map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]),
    );
    const tabs = h("div", { class: "tabs", role: "tablist" });
    const shown = h("pre", { class: "output", id: "kv-shown" });
    const showTab = (name) => {
      tab = name;
      for (const b of tabs.children) b.setAttribute("aria-selected", String(b.dataset.tab === name));
      shown.textContent = text === null ? `(binary value, ${atob(pair.Value || "").length} bytes)`
        : name === "json" && isJson ? JSON.stringify(JSON.parse(text), null, 2) : text;
    };
    for (const [name, label] of [["text", "Text"], ["json", "JSON"]]) {
      tabs.append(h("button", {
        type: "button", role: "tab", dataset: { tab: name }, disabled: name === "json" && !isJson,
        onclick: () => showTab(name),
      }, label));
    }
    showTab(isJson && tab === "json" ? "json" : "text");
    const { form, area } = editor({
      value: text ?? "",
      json: isJson,
      onSave: async (value) => {
        const ok = await put(`${kvUrl(key)}?cas=${pair.ModifyIndex}`, value, signal);
        dirty = false;
        if (ok === false) {
          render(current);
          fill(notice, h("div", { class: "notice", id: "kv-conflict" },
            "Someone changed this key since you opened it, so your edit was not saved. Shown here is their value."));
          return;
        }
        // The watch may have delivered the saved version while the editor still counted as dirty.
        render(current);
        fill(notice, h("div", { class: "notice", id: "kv-saved" }, "Saved."));
      },
    });
    area.addEventListener("input", () => { dirty = true; });
    fill(
      view,
      facts,
      h("h2", {}, "Value"), tabs, shown,
      text === null ? null : [h("h2", {}, "Edit"), form],
      h("div", { class: "form-actions" }, deleteButton("Delete key", async () => {
        const deleted = await del(`${kvUrl(key)}?cas=${pair.ModifyIndex}`, signal);
        if (deleted === false) {
          fill(notice, h("div", { class: "notice", id: "kv-conflict" },
            "Someone changed this key since you opened it, so it was not deleted. Shown here is their value."));
          return;
        }
        location.hash = kvRoute(key.replace(/[^/]*$/, ""));
      })),
    );
    view.dataset.modifyIndex = String(pair.ModifyIndex);
  }

  watch(kvUrl(key), (data) => {
    const pair = data && data[0];
    if (!pair) {
      fill(notice);
      fill(view, empty("This key does not exist (or was deleted)."), h("p", {}, h("a", { href: kvRoute(key.replace(/[^/]*$/, "")) }, "Back to the folder")));
      current = null;
      return;
    }
    if (current && dirty && pair.ModifyIndex !== current.ModifyIndex) {
      fill(notice, h("div", { class: "notice" }, `Changed on the server (modify index ${pair.ModifyIndex}) while you were editing.`));
    }
    current = pair;
    if (!dirty) render(pair);
  }, { signal });
}
