// The page shell: routes (#/services, #/services/NAME, #/nodes, #/kv/PATH, #/cluster), the
// header, the "agent unreachable" banner and keyboard shortcuts.

import { onReachability, onDenied, getJSON, request, token, setToken } from "./api.js";
import { servicesPage, servicePage } from "./services.js";
import { nodesPage } from "./nodes.js";
import { kvFolderPage, kvKeyPage } from "./kv.js";
import { clusterPage } from "./cluster.js";

const main = document.getElementById("main");
const banner = document.getElementById("banner");
let current = null;

function decode(path) {
  try {
    return path.split("/").map(decodeURIComponent).join("/");
  } catch {
    return path;
  }
}

function route() {
  denied.hidden = true;
  current?.abort();
  current = new AbortController();
  const signal = current.signal;
  const hash = location.hash.replace(/^#/, "") || "/services";
  const [path, qs] = hash.split("?");
  const params = new URLSearchParams(qs || "");
  const [, section = "services", ...rest] = path.split("/");
  const tail = decode(rest.join("/"));
  for (const a of document.querySelectorAll("header nav a")) {
    if (a.dataset.section === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `${section === "kv" ? "Key/Value" : section[0].toUpperCase() + section.slice(1)} · census`;
  switch (section) {
    case "nodes":
      return nodesPage(main, params, signal);
    case "kv":
      return tail === "" || tail.endsWith("/") ? kvFolderPage(main, tail, signal) : kvKeyPage(main, tail, signal);
    case "cluster":
      return clusterPage(main, signal);
    case "services":
    default:
      return tail ? servicePage(main, tail, signal) : servicesPage(main, params, signal);
  }
}

onReachability((ok, message) => {
  banner.hidden = ok;
  banner.textContent = ok ? "" : message;
  document.body.dataset.agent = ok ? "reachable" : "unreachable";
  if (ok) loadAgentInfo();
});

// ACLs: a refused request is said plainly, with a way to log in.
const denied = document.getElementById("denied");
onDenied((message) => {
  denied.hidden = false;
  denied.textContent = `${message} — ${token() ? "this token may not see this page." : "log in with an ACL token to see it."}`;
});

const dialog = document.getElementById("login-dialog");
const loginError = document.getElementById("login-error");

async function loadIdentity() {
  const who = document.getElementById("whoami");
  const logout = document.getElementById("logout");
  const login = document.getElementById("login-open");
  if (!token()) {
    who.textContent = "";
    logout.hidden = true;
    login.hidden = false;
    return;
  }
  try {
    const self = await getJSON("/v1/acl/token/self");
    who.textContent = self ? `Logged in: ${self.Description || self.AccessorID}` : "";
  } catch {
    who.textContent = "";
  }
  logout.hidden = false;
  login.hidden = true;
}

document.getElementById("login-open").addEventListener("click", () => {
  loginError.textContent = "";
  dialog.showModal();
});
document.getElementById("login-cancel").addEventListener("click", () => dialog.close());
document.getElementById("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const secret = document.getElementById("login-token").value.trim();
  const response = await fetch("/v1/acl/token/self", { headers: { "X-Consul-Token": secret }, cache: "no-store" });
  if (!response.ok) {
    const text = (await response.text()).trim();
    loginError.textContent = response.status === 401 ? "ACLs are not enabled on this agent." : `Not logged in: ${text}`;
    return;
  }
  setToken(secret);
  dialog.close();
  denied.hidden = true;
  await loadIdentity();
  route();
});
document.getElementById("logout").addEventListener("click", async () => {
  setToken("");
  denied.hidden = true;
  await loadIdentity();
  route();
});

async function loadAgentInfo() {
  try {
    const self = await getJSON("/v1/agent/self");
    const info = document.getElementById("agent-info");
    info.textContent = `${self.Config.NodeName} · ${self.Config.Datacenter} · census ${self.Config.Version}`;
  } catch {
    // The banner tells.
  }
}

// "/" focuses the page's search box, as on most catalog UIs.
document.addEventListener("keydown", (ev) => {
  if (ev.key !== "/" || ev.target.closest("input, textarea, select")) return;
  const search = document.querySelector("[data-search]");
  if (search) {
    ev.preventDefault();
    search.focus();
  }
});

window.addEventListener("hashchange", () => {
  route();
  main.focus({ preventScroll: true });
});
document.body.dataset.agent = "reachable";
loadAgentInfo();
loadIdentity();
route();

document.getElementById("skip-link").addEventListener("click", (ev) => {
  ev.preventDefault();
  main.focus();
});
