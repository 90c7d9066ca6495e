// Live refresh of the status page: poll /api/status every second and
// re-render the tables the server rendered first (templates/status/index.html;
// keep the columns of both in step). No framework, no build step. Cells are
// filled with textContent only, so nothing the engine reports is ever parsed as HTML.
"use strict";

(function () {
  const POLL_MS = 1000;
  const TALKING = new Set(["on_call", "connected"]);

  function text(v) {
    return v === null || v === undefined ? "" : String(v);
  }

  // Milliseconds as m:ss, or h:mm:ss from an hour on (views.duration does the same).
  function duration(ms) {
    if (typeof ms !== "number" || !isFinite(ms)) return "";
    let s = Math.floor(Math.max(0, ms) / 1000);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    s = s % 60;
    const ss = String(s).padStart(2, "0");
    return h ? h + ":" + String(m).padStart(2, "0") + ":" + ss : m + ":" + ss;
  }

  function callTime(snap, call) {
    const phase = TALKING.has(call.state) ? "talking" : "waiting";
    const t = typeof snap.tick_ms === "number" && typeof call.since_ms === "number"
      ? duration(snap.tick_ms - call.since_ms) : "";
    return phase + " " + t;
  }

  // A channel's echo canceller: "128 taps" when on, else its state (snapshot.echo_text does the same).
  function echoText(e) {
    if (!e || typeof e !== "object" || typeof e.state !== "string") return "";
    if (e.state !== "on") return e.state;
    return typeof e.taps === "number" ? e.taps + " taps" : "on";
  }

  // A span's alarms and defects, "ok" when there are none (views.span_alarms), and its worst state.
  function spanAlarms(s) {
    const names = Array.isArray(s.alarms) ? s.alarms.map(text) : [];
    const defects = Array.isArray(s.detail) ? s.detail.map(text) : [];
    const out = names.join(", ") || "ok";
    return defects.length ? out + " (" + defects.join(", ") + ")" : out;
  }

  function spanState(s) {
    const names = Array.isArray(s.alarms) ? s.alarms : [];
    return ["red", "blue", "yellow", "recover"].find((a) => names.includes(a)) || "ok";
  }

  // One column: the cell's text, and optionally a class for the cell.
  const TABLES = {
    calls: {
      what: "calls",
      cols: [
        (c) => [text(c.ani)], (c) => [text(c.dnis)], (c) => [text(c.trunk)], (c) => [text(c.state)],
        (c) => [text(c.queue)], (c) => [text(c.agent)], (c, snap) => [callTime(snap, c)],
      ],
    },
    queues: {
      what: "queues",
      cols: [
        (q) => [text(q.name)], (q) => [text(q.waiting), "num"], (q) => [duration(q.longest_wait_ms), "num"],
      ],
    },
    agents: {
      what: "agents",
      cols: [
        (a) => [text(a.number)], (a) => [text(a.name)], (a) => [text(a.phone)],
        (a) => [text(a.state), "state-" + text(a.state)],
      ],
    },
    spans: {
      what: "spans",
      cols: [
        (s) => [text(s.name)], (s) => [text(s.kind)], (s) => [text(s.framing)], (s) => [text(s.timing), "num"],
        (s) => [spanAlarms(s), "alarm-" + spanState(s)],
        (s) => [text((s.counters || {}).crc), "num"], (s) => [text((s.counters || {}).slips), "num"],
        (s) => [text((s.counters || {}).es), "num"],
      ],
    },
    ports: {
      what: "ports",
      cols: [
        (p) => [text(p.name)], (p) => [text(p.kind)], (p) => [text(p.state), "state-" + text(p.state)],
        (p) => [echoText(p.echo)],
      ],
    },
  };

  function render(snap) {
    for (const [id, table] of Object.entries(TABLES)) {
      const body = document.getElementById(id);
      if (!body) continue;
      const items = Array.isArray(snap[id]) ? snap[id].filter((x) => x && typeof x === "object") : [];
      const rows = [];
      for (const item of items) {
        const tr = document.createElement("tr");
        for (const col of table.cols) {
          const [value, cls] = col(item, snap);
          const td = document.createElement("td");
          td.textContent = value;
          if (cls) td.className = cls;
          tr.appendChild(td);
        }
        rows.push(tr);
      }
      if (!rows.length) {
        const tr = document.createElement("tr");
        tr.className = "empty";
        const td = document.createElement("td");
        td.colSpan = table.cols.length;
        td.textContent = "no " + table.what;
        tr.appendChild(td);
        rows.push(tr);
      }
      body.replaceChildren(...rows);
    }
    const sync = document.getElementById("sync");
    if (sync) sync.textContent = "clock from " + text(snap.sync_source);
    const clock = document.getElementById("clock");
    if (clock) {
      clock.textContent = "engine clock " + text(snap.calendar) + " · configuration version " + text(snap.config_version);
    }
  }

  function banner(message) {
    const el = document.getElementById("banner");
    if (!el) return;
    el.textContent = message || "";
    el.hidden = !message;
    document.body.classList.toggle("stale", !!message);
  }

  async function poll(url) {
    try {
      const response = await fetch(url, { cache: "no-store", headers: { Accept: "application/json" } });
      let body = null;
      try {
        body = await response.json();
      } catch (e) {
        body = null;
      }
      if (response.ok && body && typeof body === "object") {
        banner(null);
        render(body);
      } else if (body && body.error) {
        banner("engine not reachable: " + text(body.error));
      } else {
        banner("panel error: HTTP " + response.status);
      }
    } catch (e) {
      banner("panel not reachable: " + text(e && e.message));
    } finally {
      window.setTimeout(() => poll(url), POLL_MS);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const url = document.body.dataset.statusUrl;
    if (url) window.setTimeout(() => poll(url), POLL_MS);
  });
})();
