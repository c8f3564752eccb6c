// Nodes: every node with its services and health; the Raft leader is marked.

import { watch, poll, getJSON, encodePath } from "./api.js";
import { h, fill, badge, healthCounts, pager, empty, worst, debounce, setRouteParams, cell, PAGE_SIZE } from "./dom.js";

export function nodesPage(main, params, signal) {
  let query = params.get("q") || "";
  let page = Number(params.get("page") || 0);
  let nodes = null;
  let leaderNode = "";
  let servers = new Set();

  const count = h("span", { class: "count" });
  const search = h("input", {
    type: "search", id: "node-search", placeholder: "Search by node, address or service",
    "aria-label": "Search nodes", value: query, "data-search": true,
  });
  const body = h("tbody");
  const table = h(
    "table", { class: "list", id: "nodes" },
    h("thead", {}, h("tr", {}, ["Node", "Address", "Health", "Services"].map((c) => h("th", { scope: "col" }, c)))),
    body,
  );
  const listSlot = h("div", {}, table);
  const pagerSlot = h("div");
  fill(main, h("h1", {}, "Nodes", count), h("div", { class: "toolbar" }, h("div", { class: "grow" }, search)), listSlot, pagerSlot);

  function matches(n) {
    if (!query) return true;
    const q = query.toLowerCase();
    return n.Node.toLowerCase().includes(q) || n.Address.includes(q)
      || (n.Services || []).some((s) => s.Service.toLowerCase().includes(q));
  }

  function draw() {
    if (!nodes) return;
    const shown = nodes.filter(matches);
    const pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
    page = Math.min(page, pages - 1);
    count.textContent = `${nodes.length.toLocaleString()} registered`;
    setRouteParams({ q: query, page });
    if (!shown.length) {
      fill(listSlot, empty(nodes.length ? "No node matches this search." : "No nodes are registered yet."));
      fill(pagerSlot);
      return;
    }
    fill(listSlot, table);
    fill(body, shown.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE).map((n) => {
      const checks = n.Checks || [];
      const counts = { passing: 0, warning: 0, critical: 0 };
      for (const c of checks) counts[c.Status] = (counts[c.Status] || 0) + 1;
      const status = worst(checks.map((c) => c.Status));
      const names = [...new Set((n.Services || []).map((s) => s.Service))].sort();
      return h(
        "tr", { dataset: { status, node: n.Node } },
        h("td", { class: "name", "data-label": "Node" },
          h("strong", {}, n.Node), " ",
          n.Node === leaderNode ? badge("leader", "★ leader") : null,
          servers.has(n.Node) && n.Node !== leaderNode ? h("span", { class: "badge muted" }, "server") : null),
        cell("Address", h("span", { class: "mono" }, n.Address)),
        cell("Health", healthCounts(counts.passing, counts.warning, counts.critical)),
        cell("Services", names.length
          ? names.map((s, i) => [i ? ", " : "", h("a", { href: `#/services/${encodePath(s)}` }, s)])
          : h("span", { class: "meta-line" }, "none")),
      );
    }));
    fill(pagerSlot, shown.length > PAGE_SIZE ? pager(shown.length, page, (p) => { page = p; draw(); }) : null);
  }

  const onSearch = debounce(() => { query = search.value.trim(); page = 0; draw(); }, 120);
  search.addEventListener("input", onSearch);
  search.addEventListener("change", onSearch);
  watch("/v1/internal/ui/nodes", (data) => { nodes = data || []; draw(); }, { signal });
  poll(async () => {
    const config = await getJSON("/v1/operator/raft/configuration?stale", signal);
    const leader = (config?.Servers || []).find((s) => s.Leader)?.Node || "";
    const names = new Set((config?.Servers || []).map((s) => s.Node));
    if (leader !== leaderNode || names.size !== servers.size) {
      leaderNode = leader;
      servers = names;
      draw();
    }
  }, 3000, signal);
}
