// The wallboard: one EventSource on /wallboard/events; each `snapshot` event fills the tables of
// templates/wallboard/index.html (keep the columns of both in step). Rows are kept by key and their
// cells set with textContent only, so nothing the engine reports is ever parsed as HTML and the page
// never reloads. Durations are the engine's clock: tick_ms - since.
"use strict";

(function () {
  const BUSY = ["offered", "on_call", "wrap_up"];

  function text(v) {
    return v === null || v === undefined ? "" : String(v);
  }

  // Milliseconds as m:ss, or h:mm:ss from an hour on.
  function duration(ms) {
    if (typeof ms !== "number" || !isFinite(ms)) return "";
    let s = Math.floor(Math.max(0, ms) / 1000);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    s = s % 60;
    const ss = String(s).padStart(2, "0");
    return h ? h + ":" + String(m).padStart(2, "0") + ":" + ss : m + ":" + ss;
  }

  function since(snap, ms) {
    return typeof snap.tick_ms === "number" && typeof ms === "number" ? duration(snap.tick_ms - ms) : "";
  }

  // A channel's echo canceller: "128 taps" when on, else its state (snapshot.echo_text does the same).
  function echoText(e) {
    if (!e || typeof e !== "object" || typeof e.state !== "string") return "";
    if (e.state !== "on") return e.state;
    return typeof e.taps === "number" ? e.taps + " taps" : "on";
  }

  function list(snap, key) {
    const v = snap[key];
    return Array.isArray(v) ? v.filter((x) => x && typeof x === "object") : [];
  }

  // Fill tbody `id` with one row per item, keyed by key(item); cells(item) gives [text, class] pairs
  // (or a function that fills the cell itself). Rows are reused, so a cell keeps its element.
  function fill(id, what, ncols, items, key, cells) {
    const body = document.getElementById(id);
    if (!body) return;
    const old = new Map();
    for (const tr of Array.from(body.rows)) {
      if (tr.dataset.key !== undefined) old.set(tr.dataset.key, tr);
    }
    const rows = [];
    for (const item of items) {
      const k = text(key(item));
      let tr = old.get(k);
      old.delete(k);
      const values = cells(item);
      if (!tr || tr.cells.length !== values.length) {
        tr = document.createElement("tr");
        tr.dataset.key = k;
        for (let i = 0; i < values.length; i++) tr.appendChild(document.createElement("td"));
      }
      values.forEach((v, i) => {
        const td = tr.cells[i];
        if (typeof v === "function") {
          v(td);
          return;
        }
        const [t, cls] = Array.isArray(v) ? v : [v, ""];
        if (td.textContent !== text(t)) td.textContent = text(t);
        if (td.className !== (cls || "")) td.className = cls || "";
      });
      rows.push(tr);
    }
    if (!rows.length) {
      const tr = document.createElement("tr");
      tr.className = "empty";
      const td = document.createElement("td");
      td.colSpan = ncols;
      td.textContent = "no " + what;
      tr.appendChild(td);
      rows.push(tr);
    }
    body.replaceChildren(...rows);
  }

  const body = document.body;
  const actAny = body.dataset.actAny === "1";
  const ownAgent = body.dataset.ownAgent || "";
  const agentsUrl = body.dataset.agentsUrl || "/api/agents/";
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function say(message, failed) {
    const p = document.getElementById("action");
    p.textContent = message;
    p.classList.toggle("failed", !!failed);
    p.hidden = false;
  }

  async function act(number, path, payload) {
    try {
      const resp = await fetch(agentsUrl + encodeURIComponent(number) + "/" + path, {
        method: "POST",
        credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
        body: JSON.stringify(payload),
      });
      const reply = await resp.json().catch(() => ({}));
      if (!resp.ok) {
        say("agent " + number + ": " + text(reply.error || resp.status), true);
      } else if (reply.result === "pending") {
        say("agent " + number + ": pending, it changes when its call ends", false);
      } else {
        say("agent " + number + ": " + text(reply.state) + (reply.reason ? " (" + reply.reason + ")" : ""), false);
      }
    } catch (err) {
      say("agent " + number + ": " + String(err), true);
    }
  }

  // payload: the POST's body, or a function giving it when the button is pressed.
  function button(label, number, path, payload) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.dataset.action = label;
    b.addEventListener("click", () => act(number, path, typeof payload === "function" ? payload() : payload));
    return b;
  }

  // The site's not-ready reasons (the snapshot's not_ready_reasons, code -> name) as names, `other` first:
  // what agent.state takes. Codes are digits, so they come in the order of their number.
  function reasonNames(snap) {
    const given = snap.not_ready_reasons && typeof snap.not_ready_reasons === "object" ? snap.not_ready_reasons : {};
    const names = ["other"];
    for (const name of Object.values(given)) {
      if (typeof name === "string" && !names.includes(name)) names.push(name);
    }
    return names;
  }

  // The reason select of a Not ready button; `was`: the choice to keep, if still offered.
  function reasonSelect(number, names, was) {
    const sel = document.createElement("select");
    sel.dataset.reason = "";
    sel.setAttribute("aria-label", "not-ready reason for agent " + number);
    for (const name of names) {
      const opt = document.createElement("option");
      opt.value = name;
      opt.textContent = name;
      sel.appendChild(opt);
    }
    sel.value = names.includes(was) ? was : "other";
    return sel;
  }

  // The buttons of an agent's row: for any agent with agents.act, one's own with agents.self. Rebuilt
  // when they come or go, or when the site's reasons change (the choice made is kept where it can be).
  function actions(a, names) {
    return (td) => {
      td.className = "actions";
      const mine = actAny || (ownAgent !== "" && ownAgent === a.number);
      const want = mine && a.state !== "logged_out" ? JSON.stringify(names) : "";
      if (td.dataset.buttons === want) return;
      const old = td.querySelector("select[data-reason]");
      td.dataset.buttons = want;
      td.replaceChildren();
      if (!want) return;
      const sel = reasonSelect(a.number, names, old ? old.value : "other");
      td.appendChild(button("Ready", a.number, "state", {state: "ready"}));
      td.appendChild(button("Not ready", a.number, "state", () => ({state: "not_ready", reason: sel.value})));
      td.appendChild(sel);
      td.appendChild(button("Log out", a.number, "logout", {}));
    };
  }

  function render(snap) {
    const clock = document.getElementById("clock");
    clock.dataset.tick = text(snap.tick_ms);      // which snapshot is shown (tests wait for it)
    clock.textContent = "engine clock " + text(snap.calendar) + " · " + text(snap.site) + " · configuration version " +
      text(snap.config_version);
    const ports = new Map(list(snap, "ports").map((p) => [p.index, p]));
    fill("calls", "calls", 7, list(snap, "calls"), (c) => c.id, (c) => {
      const port = ports.get(c.port);
      return [
        port ? port.name : (c.timeslot !== null && c.timeslot !== undefined ? c.trunk + "/ts" + c.timeslot : c.trunk),
        [c.state, "state-" + text(c.state)], c.ani, c.dnis, c.queue, c.agent,
        [since(snap, c.state_since_ms), "num"]];
    });
    const today = snap.today && typeof snap.today === "object" ? snap.today : {};
    fill("queues", "queues", 7, list(snap, "queues"), (q) => q.name, (q) => {
      const agents = q.agents && typeof q.agents === "object" ? q.agents : {};
      const busy = BUSY.reduce((n, s) => n + (agents[s] || 0), 0);
      const day = today[q.name] || {};
      return [q.name, [q.waiting, "num"], [duration(q.longest_wait_ms), "num"], [agents.ready || 0, "num"],
        [busy, "num"], [day.answered || 0, "num"], [day.abandoned || 0, "num"]];
    });
    const names = reasonNames(snap);
    fill("agents", "agents", 7, list(snap, "agents"), (a) => a.number, (a) => [
      a.number, a.name, [a.state, "state-" + text(a.state)], a.reason,
      [since(snap, a.state_since_ms), "num"], a.pending, actions(a, names)]);
    fill("spans", "spans", 5, list(snap, "spans"), (s) => s.name, (s) => {
      const alarms = Array.isArray(s.alarms) ? s.alarms.map(String) : [];
      const defects = Array.isArray(s.detail) ? s.detail.map(String) : [];
      const worst = ["red", "blue", "yellow", "recover"].find((x) => alarms.includes(x)) || "ok";
      const counters = s.counters && typeof s.counters === "object" ? s.counters : {};
      const shown = (alarms.join(", ") || "ok") + (defects.length ? " (" + defects.join(", ") + ")" : "");
      return [s.name, s.kind, [shown, "alarm-" + worst], [counters.crc, "num"], [counters.slips, "num"]];
    });
    document.getElementById("sync").textContent = snap.sync_source ? "· clock from " + text(snap.sync_source) : "";
    fill("ports", "ports", 6, list(snap, "ports"), (p) => p.index, (p) => [
      p.name, p.kind, [p.state, "state-" + text(p.state)], [since(snap, p.state_since_ms), "num"], p.call_id,
      echoText(p.echo)]);
    // the snapshot's alarms: one row per kind, since when (the oldest of the kind)
    const kinds = new Map();
    for (const al of list(snap, "alarms")) {
      const k = text(al.kind);
      if (!kinds.has(k)) kinds.set(k, al);
    }
    const box = document.getElementById("alarms");
    box.hidden = kinds.size === 0;
    fill("alarm-rows", "alarms", 3, Array.from(kinds.values()), (al) => al.kind,
      (al) => [al.kind, [since(snap, al.since_ms) + " ago", "num"], al.detail]);
  }

  function banner(message) {
    const b = document.getElementById("banner");
    b.textContent = message;
    b.hidden = !message;
    body.classList.toggle("stale", !!message);
  }

  const source = new EventSource(body.dataset.eventsUrl);
  source.addEventListener("snapshot", (ev) => {
    try {
      render(JSON.parse(ev.data));
      banner("");
    } catch (err) {
      banner("a snapshot could not be shown: " + String(err));
    }
  });
  source.addEventListener("engine", (ev) => {
    let why = "";
    try {
      why = text(JSON.parse(ev.data).reason);
    } catch (err) {
      why = String(err);
    }
    banner("engine not reachable: " + why);
  });
  source.addEventListener("end", (ev) => {
    source.close();
    let why = "";
    try {
      why = text(JSON.parse(ev.data).reason);
    } catch (err) {
      why = "";
    }
    banner(why || "your session is over: sign in again");
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) banner("the wallboard lost the panel: reload to sign in again");
  });
})();
