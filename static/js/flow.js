/* The jobflow run page: node colours follow the run live; the root's badge and buttons too. */
(function () {
  "use strict";

  var FINAL = ["SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT", "SKIPPED"];

  function badge(status) {
    var span = document.createElement("span");
    span.className = "badge status-" + status;
    span.dataset.status = status;
    span.textContent = status;
    return span;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var svg = document.getElementById("dag");
    if (!svg) return;
    var runId = Number(svg.dataset.run);
    var liveState = document.getElementById("live-state");

    function setNode(key, jobId, status) {
      var node = svg.querySelector('.node[data-node="' + CSS.escape(key) + '"]');
      if (node) {
        node.dataset.status = status;
        var text = node.querySelector(".node-status");
        text.textContent = status;
        var title = node.querySelector("title");
        if (title) title.textContent = key + ": " + status;
        if (jobId) {
          node.setAttribute("href", "/jobs/" + jobId + "/");
          node.dataset.job = jobId;
        }
      }
      var row = document.querySelector('#nodes tr[data-node="' + CSS.escape(key) + '"] .node-badge');
      if (row) row.replaceChildren(badge(status));
    }

    function setRoot(status) {
      var el = document.getElementById("status-badge");
      if (el.dataset.status === status) return;
      el.className = "badge big status-" + status;
      el.dataset.status = status;
      el.textContent = status;
      if (FINAL.indexOf(status) >= 0) refreshParts();
    }

    var pending = null;
    function refreshSoon() {
      /* the table's times and notes come from the server; many nodes moving at once cost one fetch */
      if (pending) return;
      pending = setTimeout(function () { pending = null; refreshParts(); }, 700);
    }

    function refreshParts() {
      fetch(window.location.pathname, { credentials: "same-origin" })
        .then(function (r) { return r.text(); })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          ["actions", "nodes", "run-outcome"].forEach(function (id) {
            var fresh = doc.getElementById(id);
            var old = document.getElementById(id);
            if (fresh && old) {
              old.replaceWith(fresh);
              window.Acc.formatTimes(fresh);
            }
          });
        });
    }

    var live = new window.AccLive({
      onstate: function (state) {
        liveState.dataset.state = state;
        liveState.textContent = { live: "live", connecting: "connecting…", reconnecting: "reconnecting…", polling: "polling" }[state] || state;
      },
    });
    live.subscribeRun(runId, {
      subscribed: function (m) {
        (m.nodes || []).forEach(function (n) { setNode(n.node, n.id, n.status); });
        if (m.status) setRoot(m.status);
      },
      status: function (m) {
        if (m.node) {
          setNode(m.node, m.job, m.status);
          refreshSoon();
        } else if (m.job === runId) {
          setRoot(m.status);
        }
      },
      error: function (m) { liveState.textContent = m.detail || "error"; },
    });
    live.start();
    window.accFlowPage = { live: live };
  });
})();
