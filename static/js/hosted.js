/* The hosting pages: choosing an input from the target project, the explorer's selection, the publish form's
 * routine choice, and the widget's run page that refreshes until the run has finished. The parameter form
 * itself is static/js/runform.js. */
(function () {
  "use strict";

  function encodePath(path) {
    return path.split("/").map(encodeURIComponent).join("/");
  }

  /* --- an input's "Choose…": browse the project the run will read from ----------------------------- */
  function setupPicker(form) {
    var dialog = document.getElementById("input-picker");
    if (!dialog) return;
    var list = document.getElementById("input-picker-list");
    var crumbs = document.getElementById("input-picker-crumbs");
    var project = document.getElementById("launch-project");
    var target = null;
    var kind = "file";

    function slug() {
      return project.value || form.dataset.home;
    }

    function choose(path) {
      target.value = path;
      dialog.close();
      target.focus();
    }

    function button(label, onClick) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "secondary small";
      b.textContent = label;
      b.addEventListener("click", onClick);
      return b;
    }

    function renderCrumbs(path) {
      crumbs.textContent = "";
      var parts = path ? path.split("/") : [];
      var link = function (label, to) {
        var a = document.createElement("a");
        a.href = "#";
        a.textContent = label;
        a.addEventListener("click", function (e) { e.preventDefault(); load(to); });
        return a;
      };
      crumbs.appendChild(link(slug(), ""));
      parts.forEach(function (name, i) { crumbs.append(" / ", link(name, parts.slice(0, i + 1).join("/"))); });
    }

    function note(text) {
      var li = document.createElement("li");
      li.className = "muted";
      li.textContent = text;
      list.appendChild(li);
    }

    function load(path) {
      list.textContent = "";
      if (!slug()) {
        crumbs.textContent = "";
        note("Your own area is created at your first launch; upload a file instead, or run in another project.");
        return;
      }
      renderCrumbs(path);
      if (kind === "folder" && path) list.appendChild(button("Use this folder", function () { choose(path); }));
      fetch("/api/v1/projects/" + encodeURIComponent(slug()) + "/files/" + encodePath(path), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (body) {
          if (!body.entries) { note(body.detail || "Cannot list this folder."); return; }
          if (!body.entries.length) note("This folder is empty.");
          body.entries.forEach(function (entry) {
            var li = document.createElement("li");
            var icon = document.createElement("span");
            icon.className = "icon " + (entry.type === "folder" ? "icon-folder" : "icon-file");
            icon.setAttribute("aria-hidden", "true");
            li.appendChild(icon);
            if (entry.type === "folder") {
              var open = document.createElement("a");
              open.href = "#";
              open.textContent = entry.name + "/";
              open.addEventListener("click", function (e) { e.preventDefault(); load(entry.path); });
              li.appendChild(open);
            } else {
              var name = document.createElement("span");
              name.textContent = entry.name;
              li.appendChild(name);
            }
            if (entry.type === kind) {
              var use = button("Choose", function () { choose(entry.path); });
              use.setAttribute("aria-label", "Choose " + entry.path);
              li.append(" ", use);
            }
            list.appendChild(li);
          });
        });
    }

    form.querySelectorAll(".pick-input").forEach(function (b) {
      b.addEventListener("click", function () {
        target = document.getElementById(b.dataset.target);
        kind = b.dataset.kind;
        document.getElementById("input-picker-kind").textContent = kind;
        load("");
        dialog.showModal();
      });
    });
    document.getElementById("input-picker-close").addEventListener("click", function () { dialog.close(); });
  }

  /* --- the publish form: routines of the chosen project; their schema prefilled --------------------- */
  function setupPublish(form) {
    var projectSelect = document.getElementById("publish-project");
    var routineSelect = document.getElementById("publish-routine");
    var confSchema = document.getElementById("publish-conf-schema");
    var schemas = window.Acc.jsonScript("routine-schemas") || {};
    var prefilled = confSchema.value;

    function filter() {
      routineSelect.querySelectorAll("optgroup").forEach(function (group) {
        var mine = group.label === projectSelect.value;
        group.hidden = !mine;
        group.disabled = !mine;
      });
      var chosen = routineSelect.selectedOptions[0];
      if (chosen && chosen.dataset.project && chosen.dataset.project !== projectSelect.value) routineSelect.value = "";
    }

    routineSelect.addEventListener("change", function () {
      /* replace the schema only while it is still the one we put there */
      if (confSchema.value.trim() !== prefilled.trim() && confSchema.value.trim() !== "") return;
      var schema = schemas[routineSelect.value];
      prefilled = schema && Object.keys(schema).length ? JSON.stringify(schema, null, 2) : "";
      confSchema.value = prefilled;
    });
    projectSelect.addEventListener("change", filter);
    filter();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var runForm = document.getElementById("run-form");
    if (runForm) {
      setupPicker(runForm);
      var chosen = document.getElementById("selection-list");
      if (chosen) {
        chosen.addEventListener("click", function (event) {
          if (event.target.classList.contains("remove-selected")) event.target.closest("li").remove();
        });
      }
    }
    var publishForm = document.getElementById("publish-form");
    if (publishForm) setupPublish(publishForm);

    /* the widget's run page: refresh until the run is final (the page is small; no socket needed) */
    var status = document.getElementById("run-status");
    if (status && !status.dataset.final) window.setTimeout(function () { window.location.reload(); }, 1500);
  });
})();
