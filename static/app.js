// kycdesk desk behaviour. No inline script anywhere: the CSP forbids it.
(function () {
  "use strict";
  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }
  // Every state-changing htmx request carries the session's CSRF token.
  document.addEventListener("htmx:configRequest", function (e) {
    e.detail.headers["X-CSRF-Token"] = csrf();
  });
  // A refusal appears next to the control that caused it: the server
  // aims errors at the page's flash area, and a form with its own
  // `.feedback` line takes them instead. A conflict (409: the case changed
  // in another tab or was decided by someone else) offers a reload.
  document.addEventListener("htmx:beforeSwap", function (e) {
    if (!e.detail.isError) return;
    var elt = e.detail.requestConfig && e.detail.requestConfig.elt;
    var scope = elt && elt.closest("form, section");
    var box = scope && scope.querySelector(".feedback");
    if (!box) return;
    e.detail.target = box;
    e.detail.swapOverride = "innerHTML";
  });
  document.addEventListener("htmx:afterSwap", function (e) {
    var box = e.detail.target;
    if (!box || !box.classList || !box.classList.contains("feedback")) return;
    box.classList.add("shown");
    if (e.detail.xhr && e.detail.xhr.status === 409 && !box.querySelector(".reload")) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "secondary reload";
      b.textContent = "Reload the case";
      b.addEventListener("click", function () { window.location.reload(); });
      box.appendChild(b);
    }
    // A refused value names its field first ("Date of birth: …"): that
    // field is marked and gets the cursor, its typed value untouched.
    var form = document.getElementById("edit-form");
    if (form) {
      form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
      var text = box.textContent.trim();
      form.querySelectorAll("label[for^='pd-']").forEach(function (l) {
        var name = l.childNodes[0] ? l.childNodes[0].textContent.trim() : "";
        var input = document.getElementById(l.getAttribute("for"));
        if (name && input && text.indexOf(name + ":") === 0) {
          input.setAttribute("aria-invalid", "true");
          input.setAttribute("aria-describedby", box.id);
          input.focus();
        }
      });
    }
    // Unsaved edits stopped a decision: the cursor goes to the edit reason.
    var reason = document.getElementById("edit-reason");
    if (reason && /a reason for the change/.test(box.textContent)) reason.focus();
    box.scrollIntoView({ block: "nearest" });
  });
  // Typed corrections are never lost without a word: leaving the page with
  // unsaved edits asks first. A request that succeeds (save or decide, both
  // of which carry the edits) clears the mark.
  var dirty = false;
  document.addEventListener("input", function (e) {
    if (e.target.closest && e.target.closest("#edit-form")) dirty = true;
  });
  // Before htmx acts on the answer: a success redirects at once (HX-Redirect).
  document.addEventListener("htmx:beforeOnLoad", function (e) {
    var f = e.detail.elt && e.detail.elt.closest && e.detail.elt.closest("#edit-form, #decision-form");
    if (f && e.detail.xhr && e.detail.xhr.status < 400) dirty = false;
  });
  window.addEventListener("beforeunload", function (e) {
    if (!dirty) return;
    e.preventDefault();
    e.returnValue = "";
  });
  // Accepting a case that fails checks asks first, naming the failures
  // (the button carries the question; capture runs before htmx submits).
  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("button[data-confirm]");
    if (b && !window.confirm(b.dataset.confirm)) {
      e.preventDefault();
      e.stopPropagation();
    }
  }, true);
  function toggleHelp() {
    var d = document.getElementById("keys-help");
    if (!d) return;
    if (d.open) d.close(); else d.showModal();
  }
  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest("#keys-help-button")) toggleHelp();
  });
  // Keys for the work of every case, never while typing: n takes the next
  // case, c claims this one, a / r / p press Accept / Reject / Send to
  // review (a rejection still needs its reason), e jumps to the first
  // editable field, z zooms the first image, j / k move through the queue
  // (rows on the queue page, cases on a case page).
  var rowIndex = -1;
  function moveRow(step) {
    var links = Array.prototype.slice.call(document.querySelectorAll("#queue-results a.case-link"));
    if (!links.length) return false;
    var i = links.indexOf(document.activeElement);
    if (i < 0 && rowIndex < links.length) i = rowIndex;
    var next = i < 0 ? (step > 0 ? 0 : links.length - 1) : Math.min(links.length - 1, Math.max(0, i + step));
    links.forEach(function (l) { l.closest("tr").classList.remove("current"); });
    links[next].closest("tr").classList.add("current");
    links[next].focus();
    rowIndex = next;
    return true;
  }
  // The export follows the filters as they are now, not as the page loaded.
  document.addEventListener("click", function (e) {
    var a = e.target && e.target.closest && e.target.closest("#export-csv");
    var form = document.getElementById("filters");
    if (!a || !form) return;
    var q = new URLSearchParams();
    new FormData(form).forEach(function (v, k) { if (v !== "") q.append(k, v); });
    a.href = "/desk/queue.csv?" + q.toString();
  });
  // Bulk actions (supervisors): the count of selected rows, select-all,
  // the fields the chosen action needs, and fresh results afterwards.
  function bulkCount() {
    var label = document.getElementById("bulk-count");
    if (!label) return;
    var n = document.querySelectorAll("#queue-results input[name=case]:checked").length;
    label.textContent = n === 0 ? "No case selected" : n === 1 ? "1 case selected" : n + " cases selected";
    var all = document.getElementById("bulk-all");
    var boxes = document.querySelectorAll("#queue-results input[name=case]");
    if (all) all.checked = boxes.length > 0 && n === boxes.length;
  }
  function bulkMode() {
    var form = document.getElementById("bulk-form");
    var action = document.getElementById("bulk-action");
    if (!form || !action) return;
    form.classList.toggle("assigning", action.value === "assign");
    form.classList.toggle("releasing", action.value === "release");
    form.classList.toggle("noting", action.value === "note");
  }
  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t && t.id === "bulk-all") {
      document.querySelectorAll("#queue-results input[name=case]").forEach(function (b) { b.checked = t.checked; });
    }
    if (t && (t.name === "case" || t.id === "bulk-all")) bulkCount();
    if (t && t.id === "bulk-action") bulkMode();
  });
  document.addEventListener("DOMContentLoaded", bulkMode);
  document.addEventListener("htmx:afterSettle", bulkCount);
  document.addEventListener("queue-changed", function () {
    var note = document.getElementById("bulk-note");
    if (note) note.value = "";
    var f = document.getElementById("filters");
    if (f && window.htmx) window.htmx.trigger(f, "submit");
  });
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
    var t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    if (t && t.closest && t.closest(".frame")) return; // the viewer's own keys
    if (e.key === "?") {
      e.preventDefault();
      toggleHelp();
      return;
    }
    var target = { n: "take-next", c: "claim-button", a: "accept", r: "reject", p: "pending" }[e.key];
    if (target) {
      var b = document.getElementById(target);
      if (b) { e.preventDefault(); b.click(); }
      return;
    }
    if (e.key === "x") {
      var row = document.querySelector("#queue-results tr.current");
      var box = row && row.querySelector("input[name=case]");
      if (box) { e.preventDefault(); box.checked = !box.checked; bulkCount(); }
      return;
    }
    if (e.key === "j" || e.key === "k") {
      if (moveRow(e.key === "j" ? 1 : -1)) { e.preventDefault(); return; }
      var nav = document.getElementById(e.key === "j" ? "next-case" : "prev-case");
      if (nav) { e.preventDefault(); nav.click(); }
      return;
    }
    if (e.key === "z") {
      var frame = document.querySelector("[data-viewer] .frame");
      if (frame) {
        e.preventDefault();
        frame.scrollIntoView({ block: "nearest" });
        frame.focus();
        var r = frame.getBoundingClientRect();
        zoomAt(frame, 2, r.width / 2, r.height / 2);
      }
      return;
    }
    if (e.key === "e") {
      var f = document.querySelector("#edit-form input[name^='pd_']");
      if (f) { e.preventDefault(); f.focus(); }
      return;
    }
    if (e.key === "t") {
      var panel = document.getElementById("retake-panel");
      if (panel) {
        e.preventDefault();
        panel.open = true;
        var first = panel.querySelector("input[type=checkbox]");
        if (first) first.focus();
      }
    }
  });

  // Evidence viewer. The stage is scaled and moved inside its frame; the
  // image inside it rotates. Zooming in swaps the thumbnail for the
  // original, so the detail a reviewer zooms into is real.
  function viewState(frame) {
    var st = frame._v;
    if (!st) st = frame._v = { z: 1, x: 0, y: 0, r: 0, b: 100, c: 100 };
    return st;
  }
  function draw(frame) {
    var st = viewState(frame);
    var stage = frame.querySelector(".stage"), img = frame.querySelector("img");
    if (st.z <= 1) { st.z = 1; st.x = 0; st.y = 0; }
    // Keep some of the image in view: never pan it wholly out of the frame.
    var w = frame.clientWidth, h = frame.clientHeight;
    st.x = Math.min(0, Math.max(w - w * st.z, st.x));
    st.y = Math.min(0, Math.max(h - h * st.z, st.y));
    stage.style.transform = "translate(" + st.x + "px," + st.y + "px) scale(" + st.z + ")";
    img.style.transform = "rotate(" + st.r + "deg)";
    img.style.filter = "brightness(" + st.b + "%) contrast(" + st.c + "%)";
    if (st.z > 1 && img.dataset.full && img.getAttribute("src") !== img.dataset.full) {
      img.setAttribute("src", img.dataset.full);
    }
    frame.classList.toggle("zoomed", st.z > 1);
  }
  // Zooms by `factor` keeping the frame point (px, py) where it is.
  function zoomAt(frame, factor, px, py) {
    var st = viewState(frame);
    var z = Math.min(8, Math.max(1, st.z * factor));
    st.x = px - (z / st.z) * (px - st.x);
    st.y = py - (z / st.z) * (py - st.y);
    st.z = z;
    draw(frame);
  }
  function frameOf(el) {
    var fig = el.closest("[data-viewer]");
    return fig && fig.querySelector(".frame");
  }
  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("[data-zoom],[data-rotate],[data-reset]");
    if (!b) return;
    var frame = frameOf(b);
    if (!frame) return;
    var st = viewState(frame);
    if (b.dataset.zoom) zoomAt(frame, parseFloat(b.dataset.zoom), frame.clientWidth / 2, frame.clientHeight / 2);
    if (b.dataset.rotate) { st.r = (st.r + parseInt(b.dataset.rotate, 10)) % 360; draw(frame); }
    if (b.hasAttribute("data-reset")) { st.z = 1; st.r = 0; draw(frame); }
  });
  document.addEventListener("input", function (e) {
    var r = e.target.closest && e.target.closest("[data-filter]");
    if (!r) return;
    var frame = frameOf(r);
    if (!frame) return;
    viewState(frame)[r.dataset.filter === "brightness" ? "b" : "c"] = parseInt(r.value, 10);
    draw(frame);
  });
  // Wheel zooms at the pointer once the image is zoomed or with Ctrl, so an
  // ordinary scroll over a picture still scrolls the page.
  document.addEventListener("wheel", function (e) {
    var frame = e.target.closest && e.target.closest("[data-viewer] .frame");
    if (!frame || (viewState(frame).z <= 1 && !e.ctrlKey)) return;
    e.preventDefault();
    var r = frame.getBoundingClientRect();
    zoomAt(frame, e.deltaY < 0 ? 1.25 : 0.8, e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  document.addEventListener("dblclick", function (e) {
    var frame = e.target.closest && e.target.closest("[data-viewer] .frame");
    if (!frame) return;
    var r = frame.getBoundingClientRect();
    zoomAt(frame, viewState(frame).z >= 4 ? 0 : 2, e.clientX - r.left, e.clientY - r.top);
  });
  var drag = null;
  document.addEventListener("pointerdown", function (e) {
    var frame = e.target.closest && e.target.closest("[data-viewer] .frame");
    if (!frame || viewState(frame).z <= 1) return;
    drag = { frame: frame, x: e.clientX, y: e.clientY };
    frame.setPointerCapture(e.pointerId);
  });
  document.addEventListener("pointermove", function (e) {
    if (!drag) return;
    var st = viewState(drag.frame);
    st.x += e.clientX - drag.x; st.y += e.clientY - drag.y;
    drag.x = e.clientX; drag.y = e.clientY;
    draw(drag.frame);
  });
  document.addEventListener("pointerup", function () { drag = null; });
  document.addEventListener("keydown", function (e) {
    var frame = e.target.closest && e.target.closest("[data-viewer] .frame");
    if (!frame || e.ctrlKey || e.metaKey || e.altKey) return;
    var st = viewState(frame), w = frame.clientWidth, h = frame.clientHeight, step = 40;
    var moves = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
    if (moves[e.key]) { st.x += moves[e.key][0]; st.y += moves[e.key][1]; draw(frame); }
    else if (e.key === "+" || e.key === "=" || e.key === "z") zoomAt(frame, 1.5, w / 2, h / 2);
    else if (e.key === "-") zoomAt(frame, 1 / 1.5, w / 2, h / 2);
    else if (e.key === "0") { st.z = 1; draw(frame); }
    else if (e.key === "Escape") { frame.blur(); return; }
    else return;
    e.preventDefault();
  });
  // The document portrait beside the selfie: a window onto the front image
  // where ICAO 9303 puts the photo (app.js draws it: the CSP forbids inline
  // style attributes).
  function drawCrops() {
    document.querySelectorAll(".portrait-crop[data-crop]").forEach(function (el) {
      var c = el.dataset.crop.split(" ").map(parseFloat);
      var x = c[0], y = c[1], w = c[2], h = c[3];
      el.style.backgroundImage = "url('" + el.dataset.src + "')";
      el.style.backgroundSize = (100 / w) + "% " + (100 / h) + "%";
      el.style.backgroundPosition = (w < 1 ? (x / (1 - w)) * 100 : 0) + "% " + (h < 1 ? (y / (1 - h)) * 100 : 0) + "%";
      // The window keeps the zone's shape: width follows from the height.
      var img = new Image();
      img.onload = function () {
        el.style.aspectRatio = (img.naturalWidth * w) + " / " + (img.naturalHeight * h);
      };
      img.src = el.dataset.src;
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawCrops);
  else drawCrops();
})();
