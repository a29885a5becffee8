/* Choosing project files and folders for the Run form: a small browser over the files API. */
(function () {
  "use strict";

  function encodePath(path) {
    return path.split("/").map(encodeURIComponent).join("/");
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("run-form");
    var dialog = document.getElementById("picker");
    if (!form || !dialog) return;
    var slug = form.dataset.project;
    var list = document.getElementById("picker-list");
    var crumbs = document.getElementById("picker-crumbs");
    var chosen = document.getElementById("selection-list");

    function addSelected(path) {
      var exists = Array.prototype.some.call(chosen.querySelectorAll("input[name=selected]"), function (i) {
        return i.value === path;
      });
      if (exists) return;
      var li = document.createElement("li");
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = "selected";
      input.value = path;
      var code = document.createElement("code");
      code.textContent = path;
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "secondary small remove-selected";
      remove.setAttribute("aria-label", "Remove " + path);
      remove.textContent = "×";
      li.append(input, code, " ", remove);
      chosen.appendChild(li);
    }

    chosen.addEventListener("click", function (event) {
      if (event.target.classList.contains("remove-selected")) event.target.closest("li").remove();
    });

    function renderCrumbs(path) {
      crumbs.textContent = "";
      var parts = path ? path.split("/") : [];
      var link = function (label, target) {
        var a = document.createElement("a");
        a.href = "#";
        a.textContent = label;
        a.addEventListener("click", function (e) { e.preventDefault(); load(target); });
        return a;
      };
      crumbs.appendChild(link(slug, ""));
      parts.forEach(function (name, i) {
        crumbs.append(" / ", link(name, parts.slice(0, i + 1).join("/")));
      });
    }

    function load(path) {
      renderCrumbs(path);
      list.textContent = "";
      fetch("/api/v1/projects/" + encodeURIComponent(slug) + "/files/" + encodePath(path), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (body) {
          if (!body.entries) { list.textContent = body.detail || "Cannot list this folder."; return; }
          if (!body.entries.length) {
            var empty = document.createElement("li");
            empty.className = "muted";
            empty.textContent = "This folder is empty.";
            list.appendChild(empty);
          }
          body.entries.forEach(function (entry) {
            var li = document.createElement("li");
            var box = document.createElement("input");
            box.type = "checkbox";
            box.value = entry.path;
            box.setAttribute("aria-label", "Select " + entry.path);
            li.appendChild(box);
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
            list.appendChild(li);
          });
        });
    }

    document.getElementById("pick-files").addEventListener("click", function () {
      load("");
      dialog.showModal();
    });
    document.getElementById("picker-close").addEventListener("click", function () { dialog.close(); });
    document.getElementById("picker-add").addEventListener("click", function () {
      list.querySelectorAll("input[type=checkbox]:checked").forEach(function (box) { addSelected(box.value); });
      dialog.close();
    });
  });
})();
