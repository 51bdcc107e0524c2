// Carefront self check-in kiosk (ui/kiosk.rs): the idle timeout and the
// signature pad. Served only to kiosk screens.
(function () {
  "use strict";

  // After `data-kiosk-idle` seconds without a touch or key, go back to the
  // start screen. `location.replace` keeps this screen (and what it shows)
  // out of the history, and the forms are emptied first so that nothing
  // typed survives in the page cache.
  var idle = parseInt(document.body.getAttribute("data-kiosk-idle") || "0", 10);
  function restart() {
    var forms = document.forms;
    for (var i = 0; i < forms.length; i++) forms[i].reset();
    var hidden = document.querySelectorAll("input[type=hidden]:not([name=csrf])");
    for (var j = 0; j < hidden.length; j++) hidden[j].value = "";
    window.location.replace("/kiosk");
  }
  if (idle > 0) {
    var last = Date.now();
    var touched = function () { last = Date.now(); };
    ["pointerdown", "keydown", "input", "touchstart"].forEach(function (type) {
      document.addEventListener(type, touched, { passive: true, capture: true });
    });
    setInterval(function () {
      if (Date.now() - last >= idle * 1000) restart();
    }, 500);
  }
  var again = document.querySelector("[data-kiosk-restart]");
  if (again) {
    again.addEventListener("click", function (e) { e.preventDefault(); restart(); });
  }

  // The signature pad: strokes drawn with a finger, pen or mouse are kept
  // as an SVG path ("M x y L x y ...") in the hidden `signature` input,
  // which is what the server stores. Without this script the patient types
  // their name instead.
  var pad = document.querySelector("[data-signature-pad]");
  if (!pad) return;
  var canvas = pad.querySelector("canvas");
  var field = pad.querySelector("input[name=signature]");
  var ctx = canvas.getContext("2d");
  pad.hidden = false;
  ctx.lineWidth = 3;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.strokeStyle = "#111";
  var drawing = false;
  var path = [];
  function point(e) {
    var r = canvas.getBoundingClientRect();
    return [
      Math.round((e.clientX - r.left) * canvas.width / r.width),
      Math.round((e.clientY - r.top) * canvas.height / r.height)
    ];
  }
  canvas.addEventListener("pointerdown", function (e) {
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    drawing = true;
    var p = point(e);
    path.push("M" + p[0] + " " + p[1]);
    ctx.beginPath();
    ctx.moveTo(p[0], p[1]);
  });
  canvas.addEventListener("pointermove", function (e) {
    if (!drawing) return;
    var p = point(e);
    path.push("L" + p[0] + " " + p[1]);
    ctx.lineTo(p[0], p[1]);
    ctx.stroke();
    field.value = path.join(" ");
  });
  function stop() { drawing = false; }
  canvas.addEventListener("pointerup", stop);
  canvas.addEventListener("pointercancel", stop);
  pad.querySelector("[data-signature-clear]").addEventListener("click", function () {
    path = [];
    field.value = "";
    ctx.clearRect(0, 0, canvas.width, canvas.height);
  });
})();
