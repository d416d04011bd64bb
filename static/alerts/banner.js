/* ITIRP alerts banner: unacknowledged alerts on every back-office page, new ones pushed by GET /alerts/stream
   (server-sent events; the stream ends after a bounded time and the browser reconnects with Last-Event-ID).
   A hidden tab closes its stream (it holds a web thread) and catches up from GET /alerts when shown again. */
(function () {
  "use strict";
  var root = document.getElementById("itirp-alerts");
  if (!root) return;
  var main = document.getElementById("main");
  if (main && main.parentNode) main.parentNode.insertBefore(root, main);
  var alerts = {};  // alert_id -> alert, unacknowledged only
  var lastId = 0;
  var source = null;
  var SHOWN = 5;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function when(iso) {
    return iso.slice(0, 10) + " " + iso.slice(11, 19) + " UTC";
  }

  function take(alert) {
    if (alert.id > lastId) lastId = alert.id;
    if (alert.acknowledged_at) delete alerts[alert.alert_id];
    else alerts[alert.alert_id] = alert;
  }

  function render() {
    var list = Object.keys(alerts).map(function (k) { return alerts[k]; });
    list.sort(function (a, b) { return b.id - a.id; });
    root.textContent = "";
    root.hidden = list.length === 0;
    if (!list.length) return;
    var head = el("div", "itirp-alerts-head");
    head.appendChild(el("strong", "", list.length === 1 ? "1 alert to acknowledge" : list.length + " alerts to acknowledge"));
    root.appendChild(head);
    list.slice(0, SHOWN).forEach(function (a) { root.appendChild(card(a)); });
    if (list.length > SHOWN) {
      var more = el("div", "itirp-alerts-more", "+ " + (list.length - SHOWN) + " older, see ");
      var link = el("a", "", "all alerts");
      link.href = "/admin/alerts/alert/?acknowledged_at__isnull=True";
      more.appendChild(link);
      root.appendChild(more);
    }
  }

  function card(a) {
    var box = el("div", "itirp-alert itirp-alert-" + a.severity.toLowerCase());
    box.dataset.alertId = a.alert_id;
    var text = el("div", "itirp-alert-text");
    text.appendChild(el("span", "itirp-alert-sev", a.severity));
    text.appendChild(el("span", "itirp-alert-kind", a.kind.replace(/_/g, " ").toLowerCase() + " · " + a.scope));
    text.appendChild(el("span", "itirp-alert-msg", a.message));
    text.appendChild(el("time", "itirp-alert-time", when(a.timestamp)));
    box.appendChild(text);
    var form = el("form", "itirp-alert-ack");
    var note = el("input");
    note.type = "text";
    note.name = "note";
    note.required = true;
    note.maxLength = 1000;
    note.placeholder = "Note (required): what was done";
    note.setAttribute("aria-label", "Acknowledgement note");
    var button = el("button", "button", "Acknowledge");
    button.type = "submit";
    var error = el("span", "itirp-alert-error");
    form.appendChild(note);
    form.appendChild(button);
    form.appendChild(error);
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!note.value.trim()) { error.textContent = "A note is required."; note.focus(); return; }
      button.disabled = true;
      fetch(root.dataset.ack.replace("00000000-0000-0000-0000-000000000000", a.alert_id), {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": root.dataset.csrf },
        body: JSON.stringify({ note: note.value.trim() })
      }).then(function (r) {
        return r.json().then(function (body) { return { ok: r.ok, status: r.status, body: body }; });
      }).then(function (res) {
        if (res.ok || res.status === 409) { delete alerts[a.alert_id]; render(); return; }
        button.disabled = false;
        error.textContent = (res.body && res.body.detail) || ("Not acknowledged (HTTP " + res.status + ")");
      }).catch(function () { button.disabled = false; error.textContent = "Network error, try again."; });
    });
    box.appendChild(form);
    return box;
  }

  function load() {
    return fetch(root.dataset.list + "?unacknowledged=1", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { alerts: [] }; })
      .then(function (body) {
        alerts = {};
        (body.alerts || []).forEach(take);
        if (body.last_id > lastId) lastId = body.last_id;
        render();
      });
  }

  function open() {
    if (source || !window.EventSource) return;
    source = new EventSource(root.dataset.stream + "?last_id=" + lastId);
    source.addEventListener("alert", function (ev) {
      take(JSON.parse(ev.data));
      render();
    });
  }

  function close() {
    if (source) { source.close(); source = null; }
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) close();
    else load().then(open, open);
  });
  load().then(open, open);
  // Without EventSource (or a stream that cannot connect), the rows are polled.
  if (!window.EventSource) setInterval(load, 3000);
})();
