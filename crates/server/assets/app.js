// Carefront staff UI: progressive enhancement only; every page works without it.
(function () {
  "use strict";

  // "/" jumps to the patient search from anywhere but a text field.
  document.addEventListener("keydown", function (e) {
    if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    var box = document.getElementById("global-search");
    if (box) { e.preventDefault(); box.focus(); }
  });

  // Shortcuts named on links (`data-shortcut`, also in `aria-keyshortcuts`):
  // "[" and "]" page through the schedule's days or weeks, "t" goes to today.
  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || e.key.length !== 1) return;
    var t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT|BUTTON)$/.test(t.tagName))) return;
    var links = document.querySelectorAll("[data-shortcut]");
    for (var i = 0; i < links.length; i++) {
      if (links[i].getAttribute("data-shortcut") === e.key) { e.preventDefault(); links[i].click(); return; }
    }
  });

  // Automatic sign-out: the server ends idle sessions on the next request;
  // this also clears the screen when nobody is there to make one. The last
  // activity is shared across tabs so an active tab keeps the others alive.
  var idle = parseInt(document.body.getAttribute("data-idle-seconds") || "0", 10);
  var form = document.getElementById("logout-form");
  if (!idle || !form) return;
  var KEY = "carefront-last-activity";
  function mark() { try { localStorage.setItem(KEY, String(Date.now())); } catch (_) {} }
  function last() {
    var v = 0;
    try { v = parseInt(localStorage.getItem(KEY) || "0", 10); } catch (_) {}
    return v || loaded;
  }
  var loaded = Date.now();
  mark();
  setInterval(function () {
    if (Date.now() - last() >= idle * 1000) {
      form.querySelector("input[name=reason]").value = "idle";
      form.submit();
    }
  }, 1000);
})();

// ---- Today's boards (ui/board.rs, ui/rooms.rs) ----
// Live updates: long-polls the location's board events (`GET /today/events`,
// which answers when a change is made through any server) and applies them:
// board rows change in place (status, wait clock, room, forms, next steps), rooming
// choices follow the rooms, and a visit that belongs on the page but is not
// there, or any change on the rooms board, reloads the table (not while
// someone is using a form in it). Wait clocks tick every second on the
// server's time. Without this the pages work as they are, fresh at load.
(function () {
  "use strict";
  var section = document.getElementById("board-section");
  if (!section || !window.fetch || !window.DOMParser) return;
  var kind = section.getAttribute("data-live");
  var events = section.getAttribute("data-events");
  var live = document.getElementById("board-live");
  var seq, offset, threshold;
  var pending = false;

  function read(s) {
    seq = parseInt(s.getAttribute("data-seq"), 10) || 0;
    offset = (parseInt(s.getAttribute("data-now"), 10) || Date.now()) - Date.now();
    threshold = parseInt(s.getAttribute("data-threshold-ms") || "0", 10);
  }
  read(section);

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  // The format of `board::elapsed`.
  function elapsed(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var h = Math.floor(s / 3600);
    return h ? h + "h " + pad(Math.floor(s % 3600 / 60)) + "m" : Math.floor(s / 60) + "m " + pad(s % 60) + "s";
  }

  function announce(text) { if (live && text) live.textContent = text; }

  function tick() {
    var now = Date.now() + offset;
    var timers = section.querySelectorAll(".timer[data-timed]");
    for (var i = 0; i < timers.length; i++) {
      var t = timers[i];
      var d = now - parseInt(t.getAttribute("data-since"), 10);
      t.textContent = elapsed(d);
      if (kind !== "board") continue;
      // `Visit::waiting_too_long`: waiting, and longer than the threshold.
      var late = t.hasAttribute("data-waiting") && d > threshold;
      var row = t.closest("tr");
      row.classList.toggle("overdue", late);
      var badge = row.querySelector(".late");
      if (badge) badge.hidden = !late;
    }
    if (pending && !busy()) reload();
  }

  // Someone is choosing or typing in the table: a reload would lose it.
  function busy() {
    var a = document.activeElement;
    if (a && section.contains(a) && /^(INPUT|SELECT|TEXTAREA)$/.test(a.tagName)) return true;
    var inputs = section.querySelectorAll("input[type=checkbox], input[type=text]");
    for (var i = 0; i < inputs.length; i++) {
      if (inputs[i].type === "checkbox" ? inputs[i].checked : inputs[i].value) return true;
    }
    return false;
  }

  function focusedId() {
    var a = document.activeElement;
    return a && a.id && section.contains(a) ? a.id : null;
  }

  function refocus(id, within) {
    var el = id && document.getElementById(id);
    if (!el && within) el = within.querySelector("button, select");
    if (el) el.focus();
  }

  function setText(row, selector, text) {
    var cell = row.querySelector(selector);
    if (cell) cell.textContent = text;
  }

  function setFlag(el, name, on) {
    if (on) el.setAttribute(name, "1"); else el.removeAttribute(name);
  }

  function applyVisit(v) {
    var row = document.getElementById("visit-" + v.id);
    if (!row) {
      if (v.shown) pending = true;
      return null;
    }
    var link = row.querySelector(".c-patient a");
    var said = (link ? link.textContent : "") + ": " + v.text;
    if (!v.shown) {
      row.parentNode.removeChild(row);
      return said;
    }
    setText(row, ".c-status", v.text);
    setText(row, ".c-room", v.room);
    var forms = row.querySelector(".c-forms");
    if (forms) {
      forms.innerHTML = v.forms;
      forms.classList.toggle("muted", !v.consent_signed);
    }
    var timer = row.querySelector(".timer");
    timer.setAttribute("data-since", v.since_ms);
    setFlag(timer, "data-timed", v.timed);
    setFlag(timer, "data-waiting", v.waiting);
    timer.textContent = v.wait;
    var actions = row.querySelector(".c-actions");
    if (actions) {
      var inside = actions.contains(document.activeElement);
      var id = inside ? document.activeElement.id : null;
      actions.innerHTML = v.actions;
      if (inside) refocus(id, actions);
    }
    return said;
  }

  function applyRoom(r) {
    var options = section.querySelectorAll("select[name=room_id] option");
    for (var i = 0; i < options.length; i++) {
      var o = options[i];
      if (o.value !== r.id) continue;
      o.textContent = r.option;
      o.disabled = !r.ready;
      if (o.selected && !r.ready) o.parentNode.value = "";
    }
    var row = document.getElementById("room-" + r.id);
    if (!row) return null;
    pending = true;
    var name = row.querySelector("th");
    return (name ? name.textContent : "") + ": " + r.text;
  }

  function apply(data) {
    offset = data.now_ms - Date.now();
    if (data.reload) { pending = true; return; }
    var said = [];
    data.events.forEach(function (e) {
      e.rooms.forEach(function (r) { var s = applyRoom(r); if (s) said.push(s); });
      if (kind === "board") e.visits.forEach(function (v) { var s = applyVisit(v); if (s) said.push(s); });
    });
    seq = data.seq;
    announce(said.join(". "));
    tick();
  }

  function reload() {
    pending = false;
    fetch(section.getAttribute("data-src"), { credentials: "same-origin" })
      .then(function (res) {
        if (res.redirected || !res.ok) { window.location.reload(); return null; }
        return res.text();
      })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("board-section");
        if (!fresh) return;
        if (busy()) { pending = true; return; }
        var id = focusedId();
        fresh = document.importNode(fresh, true);
        section.parentNode.replaceChild(fresh, section);
        section = fresh;
        // The new table may already show events after its number: applying
        // them again is harmless, each carries the whole new state.
        read(section);
        refocus(id, null);
        announce("The board was updated.");
        tick();
      })
      .catch(function () { pending = true; });
  }

  function poll() {
    fetch(events + "&after=" + seq, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (res) {
        var json = (res.headers.get("content-type") || "").indexOf("application/json") === 0;
        // Signed out meanwhile: show the sign-in page.
        if (res.redirected || (res.ok && !json)) { window.location.reload(); return null; }
        if (!res.ok) throw new Error("events: " + res.status);
        return res.json();
      })
      .then(function (data) {
        if (!data) return;
        apply(data);
        setTimeout(poll, 0);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }

  setInterval(tick, 1000);
  poll();
})();
