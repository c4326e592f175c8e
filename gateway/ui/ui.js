// Meridian status page. No framework and no build step: it fetches the
// gateway's JSON API every two seconds and rebuilds its tables with DOM
// calls. Everything shown goes through text nodes (never an HTML sink; the
// page's Content-Security-Policy requires Trusted Types, so one would
// throw), because service names, tags, zones and check output come
// from whoever registered an instance.
"use strict";

(function () {
  const REFRESH_MS = 2000;
  const TOKEN_KEY = "meridian.token";
  const TOKEN_HEADER = "X-Meridian-Token";

  const $ = (id) => document.getElementById(id);

  // el builds an element: el("td", {class: "x"}, "text", child, ...).
  // Strings become text nodes; attributes are set with setAttribute.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null && v !== false) e.setAttribute(k, String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function badge(cls, text) {
    return el("span", { class: "badge " + cls }, text);
  }

  function token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || "";
    } catch (e) {
      return "";
    }
  }

  // api GETs a path and returns {ok, status, body}; body is the decoded
  // JSON (an {error} object on failure), or null.
  async function api(path) {
    const headers = { Accept: "application/json" };
    const t = token();
    if (t) headers[TOKEN_HEADER] = t;
    let resp;
    try {
      resp = await fetch(path, { headers, cache: "no-store", credentials: "omit" });
    } catch (e) {
      return { ok: false, status: 0, body: { error: "the gateway is unreachable: " + e.message } };
    }
    let body = null;
    try {
      body = await resp.json();
    } catch (e) {
      body = { error: "HTTP " + resp.status + " (not JSON)" };
    }
    return { ok: resp.ok, status: resp.status, body };
  }

  function errorText(r) {
    const msg = (r.body && r.body.error) || "HTTP " + r.status;
    if (r.status === 401) return msg + " — enter a token above.";
    if (r.status === 403) return msg + " — this token may not read it.";
    return msg;
  }

  function formatAge(ms) {
    if (ms === undefined || ms === null) return "";
    if (ms < 1000) return ms + " ms";
    const s = ms / 1000;
    if (s < 120) return s.toFixed(1) + " s";
    const m = s / 60;
    if (m < 120) return m.toFixed(1) + " min";
    return (m / 60).toFixed(1) + " h";
  }

  function formatTime(iso) {
    const d = new Date(iso);
    if (isNaN(d.getTime())) return "";
    return d.toLocaleTimeString();
  }

  function replace(tbody, rows) {
    tbody.replaceChildren(...rows);
  }

  function ratioBar(passing, total) {
    const pct = total > 0 ? Math.round((100 * passing) / total) : 0;
    const fill = el("span");
    fill.style.width = pct + "%";
    return el("span", { title: passing + " of " + total + " passing" }, el("span", { class: "ratio" }, fill), pct + "%");
  }

  // State kept between refreshes.
  const state = {
    selected: "",
    regionNames: [],
  };

  function selectedFromHash() {
    const m = /^#service=([^&]*)$/.exec(location.hash);
    if (!m) return "";
    try {
      return decodeURIComponent(m[1]);
    } catch (e) {
      return "";
    }
  }

  function renderRegions(r, local) {
    const note = $("regions-note");
    const tbody = $("regions").tBodies[0];
    if (!r.ok) {
      note.textContent = errorText(r);
      replace(tbody, []);
      return [];
    }
    note.textContent = "";
    const regions = r.body.regions || [];
    replace(
      tbody,
      regions.map((g) => {
        const gws = (g.gateways || []).map((x) =>
          el("div", { class: "mono" }, x.name + " ", badge(x.status === "alive" ? "yes" : "no", x.status), x.address ? " " + x.address : "")
        );
        if (gws.length === 0) gws.push(el("span", { class: "muted" }, g.local ? "this gateway" : "none"));
        const failed = !g.reachable && !g.local;
        return el(
          "tr",
          { "data-region": g.name },
          el("td", {}, g.name, " ", g.local || g.name === local ? badge("local", "local") : null),
          el("td", {}, ...gws),
          el("td", {}, badge(g.reachable ? "yes" : "no", g.reachable ? "yes" : "no")),
          el("td", {}, g.stale ? badge("stale", "STALE") : badge("yes", "fresh")),
          el("td", { class: "mono" }, failed && !g.replica_version ? "—" : "v" + g.replica_version),
          el("td", {}, formatAge(g.replica_age_ms)),
          el("td", {}, g.rtt_ms === null || g.rtt_ms === undefined ? "—" : g.rtt_ms.toFixed(2) + " ms"),
          el("td", { class: "muted" }, g.last_error || "")
        );
      })
    );
    return regions.map((g) => g.name);
  }

  function renderServices(r, regionNames) {
    const note = $("services-note");
    const table = $("services");
    if (!r.ok) {
      note.textContent = errorText(r);
      replace(table.tBodies[0], []);
      return;
    }
    const services = r.body.services || [];
    // Every region that appears in any service, in the regions table's
    // order first.
    const names = regionNames.slice();
    for (const s of services) {
      for (const n of Object.keys(s.regions || {}).sort()) if (!names.includes(n)) names.push(n);
    }
    note.textContent = services.length === 0 ? "No services registered in any region this gateway knows." : "Click a service for its instances.";
    table.tHead.replaceChildren(
      el("tr", {}, el("th", {}, "Service"), ...names.map((n) => el("th", {}, n)), el("th", {}, "Health (all regions)"))
    );
    replace(
      table.tBodies[0],
      services.map((s) => {
        let pass = 0,
          total = 0;
        const cells = names.map((n) => {
          const c = (s.regions || {})[n];
          if (!c) return el("td", { class: "muted" }, "—");
          pass += c.passing;
          total += c.instances;
          return el(
            "td",
            { "data-region": n },
            badge(c.passing ? "passing" : "none", c.passing + " passing"),
            c.warning ? badge("warning", c.warning + " warning") : null,
            c.critical ? badge("critical", c.critical + " critical") : null,
            el("div", {}, ratioBar(c.passing, c.instances))
          );
        });
        const tr = el(
          "tr",
          { "data-service": s.name, class: s.name === state.selected ? "selected" : null },
          el("td", { class: "mono" }, s.name),
          ...cells,
          el("td", {}, ratioBar(pass, total))
        );
        tr.addEventListener("click", () => {
          location.hash = "service=" + encodeURIComponent(s.name);
        });
        return tr;
      })
    );
  }

  function checkText(c) {
    if (!c) return "none";
    const parts = [];
    if (c.http) parts.push("HTTP " + c.http);
    if (c.tcp) parts.push("TCP " + c.tcp);
    if (c.ttl) parts.push("TTL " + c.ttl);
    if (c.interval) parts.push("every " + c.interval);
    if (c.timeout) parts.push("timeout " + c.timeout);
    if (c.deregister_critical_after) parts.push("deregister after " + c.deregister_critical_after + " critical");
    return parts.join(", ");
  }

  async function refreshInstances() {
    const section = $("instances-section");
    const name = state.selected;
    if (!name) {
      section.hidden = true;
      return;
    }
    section.hidden = false;
    $("instances-service").textContent = name;
    const r = await api("/v1/services/" + encodeURIComponent(name) + "?region=*");
    const note = $("instances-note");
    const tbody = $("instances").tBodies[0];
    if (!r.ok) {
      note.textContent = errorText(r);
      replace(tbody, []);
      return;
    }
    // ?region=* answers {regions: [...]}; a gateway without federation
    // answers its own region's {instances}.
    const regions = r.body.regions || [{ region: r.body.region, stale: r.body.stale, age_ms: r.body.age_ms, instances: r.body.instances }];
    const rows = [];
    for (const g of regions) {
      for (const i of g.instances || []) {
        rows.push(
          el(
            "tr",
            { "data-instance": g.region + "/" + i.id },
            el("td", {}, g.region, g.stale ? " " : null, g.stale ? badge("stale", "stale " + formatAge(g.age_ms)) : null),
            el("td", { class: "mono" }, i.id),
            el("td", { class: "mono" }, i.address + ":" + i.port),
            el("td", {}, i.zone || ""),
            el("td", {}, badge(i.status, i.status)),
            el("td", {}, checkText(i.check)),
            el("td", { class: "mono" }, i.output || ""),
            el("td", {}, ...(i.tags || []).map((t) => badge("local", t))),
            el("td", {}, i.weight),
            el("td", {}, formatTime(i.updated_at))
          )
        );
      }
    }
    note.textContent = rows.length === 0 ? "No instances of " + name + " in any region." : "";
    replace(tbody, rows);
  }

  function renderDecisions(r) {
    const note = $("decisions-note");
    const tbody = $("decisions").tBodies[0];
    if (!r.ok) {
      note.textContent = errorText(r);
      replace(tbody, []);
      return;
    }
    const list = r.body.decisions || [];
    note.textContent = list.length === 0 ? "No routing decisions yet: they are recorded as lookups, picks and proxied requests are routed." : "";
    replace(
      tbody,
      list.map((d) => {
        const outcome = [];
        if (d.panic) outcome.push(badge("panic", "panic"));
        if (d.failover) outcome.push(badge("failover", "failover"));
        if (!d.failover && !d.panic) outcome.push(badge("yes", "local"));
        if (d.endpoints === 0) outcome.push(badge("critical", "no endpoints"));
        const shares = Object.keys(d.shares || {})
          .sort()
          .map((k) => k + " " + Math.round(d.shares[k] * 1000) / 10 + "%")
          .join(", ");
        return el(
          "tr",
          { "data-seq": d.seq },
          el("td", {}, formatTime(d.time)),
          el("td", { class: "mono" }, d.service, d.zone ? " (zone " + d.zone + ")" : "", (d.tags || []).length ? " [" + d.tags.join(", ") + "]" : ""),
          el("td", {}, d.policy),
          el("td", {}, ...outcome),
          el("td", {}, shares || "—"),
          el("td", { class: "explanation" }, d.explanation)
        );
      })
    );
  }

  function setBanner(text) {
    const b = $("banner");
    b.textContent = text;
    b.hidden = !text;
  }

  let timer = 0;
  let running = false;
  let again = false; // a refresh was asked for while one ran

  async function refresh() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    again = false;
    clearTimeout(timer);
    try {
      state.selected = selectedFromHash();
      const onlyFailover = $("only-failover").checked;
      const [health, regions, services, decisions] = await Promise.all([
        api("/v1/health"),
        api("/v1/regions"),
        api("/v1/services"),
        api("/v1/decisions?limit=25" + (onlyFailover ? "&failover=true" : "")),
      ]);
      let local = "";
      if (health.body && health.body.region) {
        local = health.body.region;
        $("gateway").textContent = "gateway of " + local + " — " + (health.body.status || "unknown");
        setBanner(health.status === 0 ? health.body.error : "");
      } else {
        $("gateway").textContent = "no answer from the gateway";
        setBanner(errorText(health));
      }
      const names = renderRegions(regions, local);
      renderServices(services, names.length ? names : local ? [local] : []);
      renderDecisions(decisions);
      await refreshInstances();
      $("updated").textContent = "updated " + new Date().toLocaleTimeString();
      document.body.setAttribute("data-refreshes", String(Number(document.body.getAttribute("data-refreshes") || "0") + 1));
    } finally {
      running = false;
      timer = setTimeout(refresh, again ? 0 : REFRESH_MS);
    }
  }

  function init() {
    const input = $("token");
    input.value = token();
    $("token-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      try {
        if (input.value) sessionStorage.setItem(TOKEN_KEY, input.value);
        else sessionStorage.removeItem(TOKEN_KEY);
      } catch (e) {
        setBanner("this browser keeps no session storage: the token cannot be kept");
      }
      refresh();
    });
    $("token-clear").addEventListener("click", () => {
      input.value = "";
      try {
        sessionStorage.removeItem(TOKEN_KEY);
      } catch (e) {
        // nothing kept
      }
      refresh();
    });
    $("only-failover").addEventListener("change", refresh);
    window.addEventListener("hashchange", refresh);
    refresh();
  }

  init();
})();
