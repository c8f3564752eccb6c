// Cluster: the Raft servers, which one leads, how recently each heard from the leader and how far
// each has applied the log.

import { poll, getJSON } from "./api.js";
import { h, fill, badge, cell, empty } from "./dom.js";

export function clusterPage(main, signal) {
  const cards = h("div", { class: "summary-cards" });
  const body = h("tbody");
  const table = h(
    "table", { class: "list", id: "peers" },
    h("thead", {}, h("tr", {}, ["Server", "Address", "Role", "Last contact", "Last log index", "Applied index", "Health"]
      .map((c) => h("th", { scope: "col" }, c)))),
    body,
  );
  const slot = h("div", {}, table);
  fill(main, h("h1", {}, "Cluster"), cards, slot);

  const card = (label, value, id) => h("div", { class: "card" }, h("div", { class: "meta-line" }, label), h("div", { class: "big", id }, value));

  poll(async () => {
    const health = await getJSON("/v1/operator/autopilot/health", signal);
    const servers = health?.Servers || [];
    const leader = servers.find((s) => s.Leader);
    fill(
      cards,
      card("Leader", leader ? leader.Name : "none", "cluster-leader"),
      card("Servers", `${servers.filter((s) => s.Voter).length} voting`, "cluster-voters"),
      card("Failure tolerance", String(health?.FailureTolerance ?? 0), "cluster-tolerance"),
      card("Cluster health", health?.Healthy ? "healthy" : "degraded", "cluster-health"),
    );
    if (!servers.length) {
      fill(slot, empty("No Raft configuration yet: the servers have not elected a leader."));
      return;
    }
    fill(slot, table);
    fill(body, servers.map((s) => h(
      "tr", { dataset: { status: s.Healthy ? "passing" : "critical", server: s.Name } },
      h("td", { class: "name", "data-label": "Server" }, h("strong", {}, s.Name)),
      cell("Address", h("span", { class: "mono" }, s.Address)),
      cell("Role", s.Leader ? badge("leader", "★ leader") : s.Voter ? "follower" : "non-voter"),
      cell("Last contact", s.LastContact),
      cell("Last log index", String(s.LastIndex)),
      cell("Applied index", String(s.AppliedIndex)),
      cell("Health", s.Healthy ? badge("passing", "healthy") : badge("critical", s.SerfStatus === "failed" ? "unreachable" : "lagging")),
    )));
  }, 2000, signal);
}
