/* Shared by every page: times in the viewer's time zone, the project switcher, small helpers. */
(function () {
  "use strict";

  var FORMATS = {
    medium: { dateStyle: "medium", timeStyle: "medium" },
    short: { dateStyle: "short", timeStyle: "short" },
    time: { timeStyle: "medium" },
  };

  /* Every <time datetime> is shown in the viewer's own zone; the server wrote UTC as a fallback. */
  function formatOne(el) {
    var date = new Date(el.getAttribute("datetime"));
    if (isNaN(date)) return;
    var style = FORMATS[el.dataset.style] || FORMATS.medium;
    el.textContent = new Intl.DateTimeFormat(undefined, style).format(date);
    el.title = date.toISOString();
  }

  function formatTimes(root) {
    (root || document).querySelectorAll("time[datetime]").forEach(formatOne);
  }

  function timeElement(iso, style) {
    var el = document.createElement("time");
    el.setAttribute("datetime", iso);
    el.dataset.style = style || "medium";
    formatOne(el);
    return el;
  }

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function jsonScript(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function humanBytes(n) {
    if (n === null || n === undefined) return "—";
    var units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  }

  document.addEventListener("DOMContentLoaded", function () {
    formatTimes(document);
    var switcher = document.getElementById("project-switcher");
    if (switcher) {
      switcher.addEventListener("change", function () {
        if (switcher.value) window.location.href = "/projects/" + encodeURIComponent(switcher.value) + "/";
      });
    }
    /* close the user menu when clicking elsewhere */
    document.addEventListener("click", function (ev) {
      document.querySelectorAll("details.usermenu[open]").forEach(function (menu) {
        if (!menu.contains(ev.target)) menu.removeAttribute("open");
      });
    });
  });

  window.Acc = {
    formatTimes: formatTimes,
    timeElement: timeElement,
    csrfToken: csrfToken,
    jsonScript: jsonScript,
    humanBytes: humanBytes,
  };
})();
