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
