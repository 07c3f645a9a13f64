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
