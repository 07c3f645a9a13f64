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
  // case, c claims this one, a / r press Accept / Reject (a rejection still
  // needs its reason), e jumps to the first editable field.
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
    var t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    if (e.key === "?") {
      e.preventDefault();
      toggleHelp();
      return;
    }
    var target = { n: "take-next", c: "claim-button", a: "accept", r: "reject" }[e.key];
    if (target) {
      var b = document.getElementById(target);
      if (b) { e.preventDefault(); b.click(); }
      return;
    }
    if (e.key === "e") {
      var f = document.querySelector("#edit-form input[name^='pd_']");
      if (f) { e.preventDefault(); f.focus(); }
    }
  });
  // Evidence viewer: zoom and rotate without leaving the case page.
  document.addEventListener("click", function (e) {
    var b = e.target.closest("[data-zoom],[data-rotate]");
    if (!b) return;
    var fig = b.closest("[data-viewer]");
    var img = fig && fig.querySelector("img");
    if (!img) return;
    var z = parseFloat(img.dataset.z || "1"), r = parseInt(img.dataset.r || "0", 10);
    if (b.dataset.zoom) z = Math.min(6, Math.max(0.5, z * parseFloat(b.dataset.zoom)));
    if (b.dataset.rotate) r = (r + parseInt(b.dataset.rotate, 10)) % 360;
    // Zooming in swaps the thumbnail for the original so detail is real.
    if (z > 1 && img.dataset.full && img.src.indexOf(img.dataset.full) < 0) img.src = img.dataset.full;
    img.dataset.z = z; img.dataset.r = r;
    img.style.transform = "rotate(" + r + "deg) scale(" + z + ")";
  });
})();
