// The hosted onboarding page: one step at a time, uploads with progress,
// optional in-browser video recording, then submit and redirect.
// No inline script (CSP); the token travels in a header, never a cookie.
(function () {
  "use strict";
  var root = document.getElementById("onboarding");
  if (!root) return;
  var t = JSON.parse(document.getElementById("onboarding-i18n").textContent);
  var scanId = root.dataset.scanId;
  var token = root.dataset.token;
  var base = "/onboarding/" + encodeURIComponent(scanId);
  var steps = Array.prototype.slice.call(root.querySelectorAll("section.step"));
  var done = {};
  steps.forEach(function (s) { if (s.dataset.slot && s.dataset.done === "1") done[s.dataset.slot] = true; });

  function show(i) {
    steps.forEach(function (s, k) { s.hidden = k !== i; });
    var h = steps[i].querySelector("h2");
    if (h) { h.setAttribute("tabindex", "-1"); h.focus(); }
    refresh();
  }
  function index(step) { return steps.indexOf(step); }

  var messages = {
    too_large: t.err_too_large, wrong_type: t.err_wrong_type, unreadable: t.err_unreadable,
    too_small: t.err_too_small, too_many_pixels: t.err_too_many_pixels, empty: t.err_empty,
    closed: t.err_closed, too_many: t.err_too_many, network: t.err_network, other: t.err_other,
    not_asked: t.err_not_asked, invalid_phone: t.err_invalid_phone, invalid_email: t.err_invalid_email,
    code_expired: t.err_code_expired, code_exhausted: t.err_code_exhausted, no_code: t.err_no_code,
    send_limit: t.err_send_limit, not_delivered: t.err_not_delivered, contact_required: t.err_contact_required,
    already_confirmed: t.err_already_confirmed
  };

  // "{s}"-style holes in the translated strings.
  function fill(text, values) {
    return String(text).replace(/\{(\w+)\}/g, function (m, k) { return k in values ? values[k] : m; });
  }
  function errorText(b) {
    if (b.code === "wrong_code") return fill(t.err_wrong_code, { n: b.attemptsLeft });
    if (b.code === "resend_wait") return fill(t.err_resend_wait, { s: b.retryAfter });
    return messages[b.code] || t.err_other;
  }

  function refresh() {
    steps.forEach(function (s) {
      if (!s.dataset.slot) return;
      var next = s.querySelector("button.next");
      var ok = !!done[s.dataset.slot];
      if (s.dataset.kind) { if (next) next.disabled = !ok; return; }
      if (s.dataset.optional === "true") { if (next) next.textContent = ok ? t.next : t.skip; }
      else if (next) next.disabled = !ok;
      var status = s.querySelector(".status");
      if (ok && status && !status.textContent) status.textContent = t.uploaded;
    });
    Array.prototype.forEach.call(root.querySelectorAll(".summary li"), function (li) {
      var ok = !!done[li.dataset.slot];
      li.querySelector(".state").textContent = ok ? (li.dataset.contact ? t.confirmed : t.uploaded) : (li.dataset.optional ? "—" : t.missing);
      li.className = ok ? "ok" : (li.dataset.optional ? "" : "missing");
    });
    var submit = document.getElementById("submit");
    if (submit) submit.disabled = Array.prototype.some.call(root.querySelectorAll(".summary li"), function (li) {
      return !li.dataset.optional && !done[li.dataset.slot];
    });
  }

  function upload(step, blob) {
    var slot = step.dataset.slot;
    var bar = step.querySelector("progress");
    var status = step.querySelector(".status");
    status.className = "status";
    status.textContent = t.uploading;
    bar.hidden = false; bar.value = 0;
    var xhr = new XMLHttpRequest();
    xhr.open("POST", base + "/evidence/" + slot);
    xhr.setRequestHeader("X-Onboarding-Token", token);
    xhr.setRequestHeader("Content-Type", blob.type || "application/octet-stream");
    xhr.upload.onprogress = function (e) { if (e.lengthComputable) bar.value = Math.round(100 * e.loaded / e.total); };
    xhr.onload = function () {
      bar.hidden = true;
      if (xhr.status === 201) {
        done[slot] = true;
        status.textContent = t.uploaded;
        var img = step.querySelector("img.preview");
        if (img && blob.type.indexOf("image/") === 0) { img.src = URL.createObjectURL(blob); img.hidden = false; }
      } else {
        var code = "other";
        try { code = JSON.parse(xhr.responseText).code || "other"; } catch (e) { /* keep "other" */ }
        status.className = "status error";
        status.textContent = errorText({ code: code });
        if (code !== "closed") { done[slot] = done[slot] || false; }
      }
      refresh();
    };
    xhr.onerror = function () { bar.hidden = true; status.className = "status error"; status.textContent = t.err_network; };
    xhr.send(blob);
  }

  // JSON to the page's own endpoints, with the token and the language.
  function postJson(url, body, cb) {
    var xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("X-Onboarding-Token", token);
    xhr.setRequestHeader("X-Onboarding-Lang", t.lang);
    xhr.setRequestHeader("Content-Type", "application/json");
    xhr.onload = function () {
      var b = {};
      try { b = JSON.parse(xhr.responseText); } catch (e) { /* empty */ }
      cb(xhr.status, b);
    };
    xhr.onerror = function () { cb(0, { code: "network" }); };
    xhr.send(JSON.stringify(body));
  }

  // Contact steps: send a code, type it, confirmed. The resend button
  // waits out the server's window with a visible countdown.
  function contactStep(step) {
    var kind = step.dataset.kind, slot = step.dataset.slot;
    var sendForm = step.querySelector(".send-form"), codeForm = step.querySelector(".code-form");
    var value = step.querySelector("input.value"), country = step.querySelector("input.country");
    var send = step.querySelector("button.send"), check = step.querySelector("button.check");
    var resend = step.querySelector("button.resend"), code = step.querySelector("input.code");
    var hint = step.querySelector(".hint"), status = step.querySelector(".status:not(.code-status)");
    var codeStatus = step.querySelector(".code-status");
    var timer = null;
    function say(text, bad) { status.className = "status" + (bad ? " error" : ""); status.textContent = text; }
    function countdown(secs) {
      clearInterval(timer);
      var left = secs;
      resend.disabled = left > 0;
      hint.textContent = left > 0 ? fill(t.resend_in, { s: left }) : "";
      timer = setInterval(function () {
        left -= 1;
        if (left <= 0) { clearInterval(timer); resend.disabled = false; hint.textContent = ""; }
        else hint.textContent = fill(t.resend_in, { s: left });
      }, 1000);
    }
    function ask() {
      send.disabled = true; resend.disabled = true;
      value.removeAttribute("aria-invalid");
      postJson(base + "/contact/" + kind, { value: value.value, countryCode: country ? country.value : null }, function (st, b) {
        send.disabled = false;
        if (st === 200) {
          codeForm.hidden = false;
          codeStatus.textContent = "";
          say(fill(t.code_sent, { to: b.to, m: Math.round(b.expiresIn / 60) }));
          countdown(b.resendIn);
          code.value = ""; code.removeAttribute("aria-invalid"); code.focus();
          return;
        }
        say(errorText(b), true);
        if (b.code === "invalid_phone" || b.code === "invalid_email") {
          codeForm.hidden = true; value.setAttribute("aria-invalid", "true"); value.focus();
        } else if (b.code === "resend_wait") {
          countdown(b.retryAfter);
        } else { resend.disabled = false; }
      });
    }
    function confirmCode() {
      check.disabled = true;
      codeStatus.textContent = "";
      code.removeAttribute("aria-invalid");
      postJson(base + "/contact/" + kind + "/code", { code: code.value }, function (st, b) {
        check.disabled = false;
        if (st === 200) {
          clearInterval(timer);
          done[slot] = true;
          sendForm.hidden = true; codeForm.hidden = true;
          status.className = "status ok";
          status.textContent = fill(t.confirmed_to, { to: b.to });
          refresh();
          step.querySelector("button.next").focus();
          return;
        }
        codeStatus.className = "status code-status error";
        codeStatus.textContent = errorText(b);
        code.setAttribute("aria-invalid", "true");
        if (b.code === "code_expired" || b.code === "code_exhausted") { clearInterval(timer); resend.disabled = false; hint.textContent = ""; resend.focus(); }
        else { code.select(); code.focus(); }
      });
    }
    send.addEventListener("click", ask);
    resend.addEventListener("click", ask);
    check.addEventListener("click", confirmCode);
    value.addEventListener("keydown", function (e) { if (e.key === "Enter") { e.preventDefault(); ask(); } });
    code.addEventListener("keydown", function (e) { if (e.key === "Enter") { e.preventDefault(); confirmCode(); } });
  }
  steps.forEach(function (s) { if (s.dataset.kind) contactStep(s); });

  // A retake may start at any step: the first one shown has no "back".
  var firstPrev = steps.length && steps[0].querySelector("button.prev");
  if (firstPrev) firstPrev.hidden = true;

  steps.forEach(function (step) {
    var input = step.querySelector("input.file");
    if (input) input.addEventListener("change", function () { if (input.files && input.files[0]) upload(step, input.files[0]); });
    var next = step.querySelector("button.next");
    if (next) next.addEventListener("click", function () { show(index(step) + 1); });
    var prev = step.querySelector("button.prev");
    if (prev) prev.addEventListener("click", function () { show(index(step) - 1); });
  });

  // In-browser recording where the browser can do it.
  var videoStep = document.getElementById("step-video");
  if (videoStep && window.MediaRecorder && navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    var rec = videoStep.querySelector(".recorder");
    var live = rec.querySelector("video.live");
    var start = rec.querySelector("button.record");
    var stop = rec.querySelector("button.stop");
    var recorder = null, chunks = [], timer = null;
    rec.hidden = false;
    start.addEventListener("click", function () {
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "user" }, audio: false }).then(function (stream) {
        live.srcObject = stream; live.play();
        var type = MediaRecorder.isTypeSupported("video/webm") ? "video/webm" : "video/mp4";
        recorder = new MediaRecorder(stream, { mimeType: type });
        chunks = [];
        recorder.ondataavailable = function (e) { if (e.data.size) chunks.push(e.data); };
        recorder.onstop = function () {
          stream.getTracks().forEach(function (tr) { tr.stop(); });
          start.hidden = false; stop.hidden = true;
          upload(videoStep, new Blob(chunks, { type: type }));
        };
        recorder.start();
        start.hidden = true; stop.hidden = false;
        timer = setTimeout(function () { if (recorder.state === "recording") recorder.stop(); }, 15000);
      }).catch(function () { rec.hidden = true; });
    });
    stop.addEventListener("click", function () { clearTimeout(timer); if (recorder && recorder.state === "recording") recorder.stop(); });
  }

  var submit = document.getElementById("submit");
  submit.addEventListener("click", function () {
    var status = document.getElementById("submit-status");
    submit.disabled = true;
    status.className = "status";
    status.textContent = t.submitting;
    var xhr = new XMLHttpRequest();
    xhr.open("POST", base + "/submit");
    xhr.setRequestHeader("X-Onboarding-Token", token);
    // The language this page is in: a retake request reopens it in the same.
    xhr.setRequestHeader("X-Onboarding-Lang", t.lang);
    xhr.onload = function () {
      var body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* empty */ }
      if (xhr.status !== 200) {
        status.className = "status error";
        status.textContent = errorText(body);
        submit.disabled = false;
        return;
      }
      show(steps.length - 1);
      var url = body.redirectUrl;
      if (!url || !/^https?:\/\//i.test(url)) return;
      var cont = document.getElementById("continue");
      cont.href = url; cont.hidden = false;
      if (body.topWindow && window.top !== window.self) {
        cont.target = "_top";
        try { window.top.location.href = url; return; } catch (e) { /* fall back to the frame */ }
      }
      window.location.href = url;
    };
    xhr.onerror = function () { status.className = "status error"; status.textContent = t.err_network; submit.disabled = false; };
    xhr.send();
  });

  // Resume where the applicant left off.
  var first = 0;
  while (first < steps.length - 2 && steps[first].dataset.slot && done[steps[first].dataset.slot]) first++;
  show(first);
})();
