/* Choosing project files and folders: a small browser over the files API in a <dialog>, used by the Run form
 * (static/js/runform.js's page) and the jobflow builder (input mappings). The page holds the markup:
 *
 *   <dialog id="picker" aria-label="Choose project files">
 *     <h2>Choose files and folders</h2>
 *     <div class="crumbs" id="picker-crumbs"></div>        breadcrumbs: the project, then each folder
 *     <ul class="picker-list" id="picker-list"></ul>        a checkbox per entry; a folder's name opens it
 *     <button type="button" id="picker-add">Add selected</button>
 *     <button type="button" id="picker-close">Close</button>
 *   </dialog>
 *
 * window.AccPicker.open(slug, onChoose) opens it at the project's top folder; "Add selected" closes it and calls
 * onChoose([{path, type}]) with the checked entries (type "file" or "folder"). Escape or Close chooses nothing.
 * Keyboard: Tab through the breadcrumbs, the entries and the buttons; Enter opens a folder, Space checks. */
(function () {
  "use strict";

  function encodePath(path) {
    return path.split("/").map(encodeURIComponent).join("/");
  }

  var state = { slug: "", onChoose: null, wired: false };

  function parts() {
    return {
      dialog: document.getElementById("picker"),
      list: document.getElementById("picker-list"),
      crumbs: document.getElementById("picker-crumbs"),
    };
  }

  function renderCrumbs(path) {
    var crumbs = parts().crumbs;
    crumbs.textContent = "";
    var names = path ? path.split("/") : [];
    var link = function (label, target) {
      var a = document.createElement("a");
      a.href = "#";
      a.textContent = label;
      a.addEventListener("click", function (e) { e.preventDefault(); load(target, true); });
      return a;
    };
    crumbs.appendChild(link(state.slug, ""));
    names.forEach(function (name, i) {
      crumbs.append(" / ", link(name, names.slice(0, i + 1).join("/")));
    });
  }

  function load(path, focus) {
    var list = parts().list;
    renderCrumbs(path);
    list.textContent = "";
    list.dataset.folder = path;
    fetch("/api/v1/projects/" + encodeURIComponent(state.slug) + "/files/" + encodePath(path), { credentials: "same-origin" })
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
          box.dataset.type = entry.type;
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
            open.addEventListener("click", function (e) { e.preventDefault(); load(entry.path, true); });
            li.appendChild(open);
          } else {
            var name = document.createElement("span");
            name.textContent = entry.name;
            li.appendChild(name);
          }
          list.appendChild(li);
        });
        /* after opening a folder the keyboard goes on from its first entry, not from the top of the page */
        var first = list.querySelector("input, a");
        if (focus && first) first.focus();
      });
  }

  function wire() {
    if (state.wired) return;
    state.wired = true;
    var p = parts();
    document.getElementById("picker-close").addEventListener("click", function () { p.dialog.close(); });
    document.getElementById("picker-add").addEventListener("click", function () {
      var chosen = Array.prototype.map.call(p.list.querySelectorAll("input[type=checkbox]:checked"), function (box) {
        return { path: box.value, type: box.dataset.type };
      });
      p.dialog.close();
      if (state.onChoose && chosen.length) state.onChoose(chosen);
    });
  }

  function open(slug, onChoose) {
    var p = parts();
    if (!p.dialog) return;
    wire();
    state.slug = slug;
    state.onChoose = onChoose;
    load("", false);
    p.dialog.showModal();
  }

  window.AccPicker = { open: open };

  /* The Run form: each chosen path becomes a hidden "selected" field with a remove button. */
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("run-form");
    var chosen = document.getElementById("selection-list");
    if (!form || !chosen || !document.getElementById("picker")) return;

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
    document.getElementById("pick-files").addEventListener("click", function () {
      open(form.dataset.project, function (entries) {
        entries.forEach(function (entry) { addSelected(entry.path); });
      });
    });
  });
})();
