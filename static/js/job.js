/* The job page: live status badge and timeline, the streaming log viewer, outputs once stored,
 * and for an interactive job its session card (link, countdown to the end, stop and extend). */
(function () {
  "use strict";

  var MAX_LINES = 5000;
  var ORDER = ["PENDING", "QUEUED", "BUILDING", "MAPPING_INPUTS", "RUNNING", "MAPPING_OUTPUTS"];
  var FINAL = ["SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT", "SKIPPED"];
  /* log lines the worker writes when the session card changes: its link appears, its end moves */
  var SESSION_LINES = /\[INFO\] (Interactive session available at:|The session was extended|The session reached its end)/;

  function span(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    function two(n) { return (n < 10 ? "0" : "") + n; }
    if (h) return h + " h " + two(m) + " min " + two(sec) + " s";
    if (m) return m + " min " + two(sec) + " s";
    return sec + " s";
  }

  /* the countdown to the session's end; it finds the element each second, so a refreshed card keeps ticking */
  function tickCountdown() {
    var el = document.getElementById("session-countdown");
    if (!el) return;
    var left = Date.parse(el.dataset.endsAt) - Date.now();
    el.textContent = left > 0 ? span(left) : "a moment (ending now)";
    el.dataset.secondsLeft = String(Math.max(0, Math.round(left / 1000)));
  }

  function rank(status) {
    return FINAL.indexOf(status) >= 0 ? ORDER.length : ORDER.indexOf(status);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var log = document.getElementById("log");
    if (!log) return;
    var jobId = Number(log.dataset.job);
    var pauseButton = document.getElementById("log-pause");
    var follow = document.getElementById("log-follow");
    var counter = document.getElementById("log-count");
    var liveState = document.getElementById("live-state");
    var lines = 0;
    var paused = false;
    var held = [];
    var lastStatus = document.getElementById("status-badge").dataset.status;

    /* --- the log ------------------------------------------------------------------ */
    function render(text) {
      var parts = text.split("\n");
      if (parts.length && parts[parts.length - 1] === "") parts.pop();
      var frag = document.createDocumentFragment();
      parts.forEach(function (line) {
        var div = document.createElement("div");
        div.className = "log-line";
        if (/^\[(INFO)\]/.test(line)) div.className += " platform";
        if (/^\[(ERROR|WARN)\]/.test(line)) div.className += " problem";
        div.textContent = line;
        frag.appendChild(div);
      });
      log.appendChild(frag);
      lines += parts.length;
      var extra = log.querySelectorAll(".log-line").length - MAX_LINES;
      if (extra > 0) {
        var all = log.querySelectorAll(".log-line");
        for (var i = 0; i < extra; i++) all[i].remove();
        if (!log.querySelector(".log-note")) {
          var note = document.createElement("div");
          note.className = "log-note";
          note.textContent = "Earlier lines are not shown here; download the whole log to see them.";
          log.insertBefore(note, log.firstChild);
        }
      }
      counter.textContent = lines + " line" + (lines === 1 ? "" : "s");
      if (follow.checked) log.scrollTop = log.scrollHeight;
    }

    function onLog(message) {
      if (SESSION_LINES.test(message.text)) refreshParts();
      if (paused) {
        held.push(message.text);
        pauseButton.textContent = "Resume (" + held.length + " new)";
        return;
      }
      render(message.text);
    }

    pauseButton.addEventListener("click", function () {
      paused = !paused;
      pauseButton.setAttribute("aria-pressed", String(paused));
      pauseButton.textContent = paused ? "Resume" : "Pause";
      if (!paused) {
        held.splice(0).forEach(render);
      }
    });
    follow.addEventListener("change", function () {
      if (follow.checked) log.scrollTop = log.scrollHeight;
    });
    log.addEventListener("wheel", function () {
      /* scrolling up by hand stops following; back at the bottom it follows again */
      window.requestAnimationFrame(function () {
        follow.checked = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      });
    });

    /* --- status ------------------------------------------------------------------ */
    function setBadge(status) {
      var badge = document.getElementById("status-badge");
      badge.className = "badge big status-" + status;
      badge.dataset.status = status;
      badge.textContent = status;
    }

    var refreshing = null;
    function refreshParts() {
      if (refreshing) return refreshing;
      refreshing = fetch(window.location.pathname, { credentials: "same-origin" })
        .then(function (r) { return r.text(); })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          ["interactive", "timeline", "outcome", "outputs", "resources", "events", "actions"].forEach(function (id) {
            var fresh = doc.getElementById(id);
            var old = document.getElementById(id);
            if (fresh && old) {
              old.replaceWith(fresh);
              window.Acc.formatTimes(fresh);
            }
          });
          bindWhy();
          var shown = document.getElementById("status-badge").dataset.status;
          refreshing = null;
          if (rank(lastStatus) > rank(shown)) {
            setBadge(lastStatus);
            setTimeout(refreshParts, 300); /* the page lagged behind the live status */
          }
        })
        .catch(function () { refreshing = null; });
      return refreshing;
    }

    function onStatus(message) {
      if (message.job !== jobId) return;
      if (rank(message.status) < rank(lastStatus)) return;
      lastStatus = message.status;
      setBadge(message.status);
      refreshParts();
    }

    /* --- why (the build-system cache) ------------------------------------------------ */
    function bindWhy() {
      var why = document.getElementById("why");
      if (!why || why.dataset.bound) return;
      why.dataset.bound = "1";
      why.addEventListener("toggle", function () {
        if (!why.open || why.dataset.loaded) return;
        fetch(why.dataset.url, { credentials: "same-origin" })
          .then(function (r) { return r.json(); })
          .then(function (body) {
            why.dataset.loaded = "1";
            var box = why.querySelector(".why-body");
            box.textContent = "";
            var p = document.createElement("p");
            p.textContent = body.explanation || body.detail || "";
            box.appendChild(p);
            if (body.nearest) {
              var q = document.createElement("p");
              var link = document.createElement("a");
              link.href = "/jobs/" + body.nearest.id + "/";
              link.textContent = "#" + body.nearest.id;
              q.append("Nearest earlier job: ", link, " (" + body.nearest.status + ")");
              if (body.nearest.differences && body.nearest.differences.length) {
                q.append("; differs in " + body.nearest.differences.join(", "));
              } else {
                q.append("; identical identity");
              }
              box.appendChild(q);
            }
          });
      });
    }
    bindWhy();
    tickCountdown();
    setInterval(tickCountdown, 1000);
    /* while it waits in the fair queue its reason may change without a status event (a quota fills, frees) */
    setInterval(function () {
      if (lastStatus === "QUEUED" && !document.hidden) refreshParts();
    }, 5000);

    /* --- live ----------------------------------------------------------------------- */
    var live = new window.AccLive({
      onstate: function (state) {
        liveState.dataset.state = state;
        liveState.textContent = { live: "live", connecting: "connecting…", reconnecting: "reconnecting…", polling: "polling" }[state] || state;
      },
    });
    live.subscribeJob(jobId, {
      log: onLog,
      status: onStatus,
      subscribed: function (m) { onStatus({ job: jobId, status: m.status }); },
      error: function (m) { liveState.textContent = m.detail || "error"; },
    });
    live.start();
    window.accJobPage = { live: live };
  });
})();
