// Services: every service name with its instances' health, and one service's instances and checks.

import { watch, encodePath } from "./api.js";
import {
  h, fill, badge, healthCounts, tags, pager, empty, worst, debounce, setRouteParams, cell, PAGE_SIZE,
} from "./dom.js";

function serviceStatus(s) {
  if (s.ChecksCritical) return "critical";
  if (s.ChecksWarning) return "warning";
  return "passing";
}

function matches(s, query) {
  if (!query) return true;
  const q = query.toLowerCase();
  return s.Name.toLowerCase().includes(q) || (s.Tags || []).some((t) => t.toLowerCase().includes(q));
}

export function servicesPage(main, params, signal) {
  let query = params.get("q") || "";
  let health = params.get("status") || "all";
  let page = Number(params.get("page") || 0);
  let all = null;

  const count = h("span", { class: "count" });
  const search = h("input", {
    type: "search", id: "service-search", placeholder: "Search by name or tag", "aria-label": "Search services",
    value: query, "data-search": true,
  });
  const filter = h(
    "select", { id: "health-filter", "aria-label": "Filter by health" },
    ["all", "passing", "warning", "critical"].map((v) =>
      h("option", { value: v, selected: v === health }, v === "all" ? "All health states" : v)),
  );
  const body = h("tbody");
  const table = h(
    "table", { class: "list", id: "services" },
    h("thead", {}, h("tr", {}, ["Service", "Health", "Instances", "Tags", "Nodes"].map((c) => h("th", { scope: "col" }, c)))),
    body,
  );
  const pagerSlot = h("div");
  const listSlot = h("div", {}, table);
  fill(main, h("h1", {}, "Services", count), h("div", { class: "toolbar" }, h("div", { class: "grow" }, search), filter), listSlot, pagerSlot);

  function draw() {
    if (!all) return;
    const shown = all.filter((s) => matches(s, query) && (health === "all" || serviceStatus(s) === health));
    const pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
    page = Math.min(page, pages - 1);
    count.textContent = `${all.length.toLocaleString()} registered`;
    setRouteParams({ q: query, status: health === "all" ? "" : health, page });
    if (!shown.length) {
      fill(listSlot, empty(all.length ? "No service matches this search." : "No services are registered yet."));
      fill(pagerSlot);
      return;
    }
    fill(listSlot, table);
    fill(body, shown.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE).map((s) => {
      const status = serviceStatus(s);
      return h(
        "tr", { dataset: { status, service: s.Name } },
        h("td", { class: "name", "data-label": "Service" }, h("a", { href: `#/services/${encodePath(s.Name)}` }, s.Name)),
        cell("Health", healthCounts(s.ChecksPassing, s.ChecksWarning, s.ChecksCritical)),
        cell("Instances", String(s.InstanceCount)),
        cell("Tags", tags(s.Tags)),
        cell("Nodes", (s.Nodes || []).join(", ")),
      );
    }));
    fill(pagerSlot, shown.length > PAGE_SIZE ? pager(shown.length, page, (p) => { page = p; draw(); }) : null);
  }

  const onSearch = debounce(() => { query = search.value.trim(); page = 0; draw(); }, 120);
  search.addEventListener("input", onSearch);
  search.addEventListener("change", onSearch);
  filter.addEventListener("change", () => { health = filter.value; page = 0; draw(); });
  watch("/v1/internal/ui/services", (data) => { all = data || []; draw(); }, { signal });
}

function instanceStatus(entry) {
  return worst((entry.Checks || []).map((c) => c.Status));
}

function checkView(c) {
  return h(
    "div", { class: "check", dataset: { check: c.CheckID, status: c.Status } },
    h("div", { class: "check-head" },
      badge(c.Status),
      h("strong", {}, c.Name || c.CheckID),
      h("span", { class: "meta-line" }, [c.CheckID, c.Type && `(${c.Type})`, c.ServiceID ? "" : "node check"].filter(Boolean).join(" "))),
    c.Notes ? h("div", { class: "meta-line" }, c.Notes) : null,
    c.Output ? h("pre", { class: "output" }, c.Output) : null,
  );
}

export function servicePage(main, name, signal) {
  const count = h("span", { class: "count" });
  const list = h("div", { id: "instances" });
  fill(
    main,
    h("div", { class: "crumbs" }, h("a", { href: "#/services" }, "Services"), " / ", name),
    h("h1", {}, name, count),
    list,
  );
  watch(`/v1/health/service/${encodePath(name)}`, (entries) => {
    entries = entries || [];
    count.textContent = `${entries.length} instance${entries.length === 1 ? "" : "s"}`;
    if (!entries.length) {
      fill(list, empty(`No instance of ${name} is registered.`));
      return;
    }
    entries.sort((a, b) => (a.Node.Node + a.Service.ID).localeCompare(b.Node.Node + b.Service.ID));
    fill(list, entries.map((e) => {
      const status = instanceStatus(e);
      const svc = e.Service;
      const address = `${svc.Address || e.Node.Address}:${svc.Port}`;
      const meta = Object.entries(svc.Meta || {}).map(([k, v]) => `${k}=${v}`).join(" · ");
      return h(
        "section", { class: "card", dataset: { status, instance: svc.ID } },
        h("h3", {}, badge(status), svc.ID, h("span", { class: "meta-line" }, `on ${e.Node.Node}`)),
        h("div", { class: "meta-line" }, h("span", { class: "mono" }, address), " ", tags(svc.Tags)),
        meta ? h("div", { class: "meta-line" }, meta) : null,
        (e.Checks || []).length ? e.Checks.map(checkView) : h("div", { class: "meta-line" }, "No checks: counted as passing."),
      );
    }));
  }, { signal });
}
