/* The hosting pages: choosing an input from the target project, the explorer's selection, the publish form's
 * routine choice, the table editors of a model's inputs and outputs, and the widget's run page that refreshes
 * until the run has finished. The parameter form itself is static/js/runform.js; the schema editors with their
 * live preview are static/js/schema_editor.js. */
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

  /* --- inputs and outputs as tables ------------------------------------------------------------------
   * A textarea[data-table-editor="inputs"|"outputs"] stays the form field: the table writes the same JSON list
   * into it on every change, so the server validates exactly what it validates for the API (one path). Keys a
   * row had that the table does not show (an input's description) are kept. Text that is not such a list (a
   * bad edit sent back with the server's message) is left as text, with a note, until it reads as one. */
  var TABLES = {
    inputs: {
      add: "Add an input",
      row: "input",
      columns: [
        { key: "name", label: "Name", placeholder: "data" },
        { key: "title", label: "Title", placeholder: "Data", optional: true },
        { key: "kind", label: "Kind", options: ["file", "folder"] },
        { key: "required", label: "Required", checkbox: true },
        { key: "target", label: "Target in the container", placeholder: "/code/in/data.csv" },
        { key: "node", label: "Node (jobflows)", placeholder: "node key", optional: true },
      ],
      blank: { name: "", kind: "file", required: true, target: "" },
    },
    outputs: {
      add: "Add an output",
      row: "output",
      columns: [
        { key: "path", label: "Path in the container", placeholder: "/code/out/" },
        { key: "name", label: "Name", placeholder: "results", optional: true },
        { key: "node", label: "Node (jobflows)", placeholder: "node key", optional: true },
      ],
      blank: { path: "" },
    },
  };

  function readList(text) {
    if (!text.trim()) return [];
    var value;
    try {
      value = JSON.parse(text);
    } catch (e) {
      return null;
    }
    if (!Array.isArray(value)) return null;
    value = value.map(function (item) { return typeof item === "string" ? { path: item } : item; });
    var objects = value.every(function (item) { return item !== null && typeof item === "object" && !Array.isArray(item); });
    return objects ? value : null;
  }

  function tableEditor(textarea) {
    var spec = TABLES[textarea.dataset.tableEditor];
    if (!spec || textarea.accTable) return;
    var label = textarea.id ? document.querySelector('label[for="' + textarea.id + '"]') : null;
    var title = label ? label.textContent.trim() : spec.add;
    var box = document.createElement("div");
    box.className = "table-editor";
    var wrap = document.createElement("div");
    wrap.className = "table-scroll";
    var table = document.createElement("table");
    table.className = "table-editor-rows";
    table.setAttribute("aria-label", title);
    var head = table.createTHead().insertRow();
    spec.columns.forEach(function (col) {
      var th = document.createElement("th");
      th.scope = "col";
      th.textContent = col.label;
      head.appendChild(th);
    });
    var last = document.createElement("th");
    var lastLabel = document.createElement("span");
    lastLabel.className = "sr-only";
    lastLabel.textContent = "Remove";
    last.appendChild(lastLabel);
    head.appendChild(last);
    var body = table.createTBody();
    wrap.appendChild(table);
    var empty = document.createElement("p");
    empty.className = "muted table-empty";
    empty.textContent = "None yet.";
    var controls = document.createElement("div");
    controls.className = "row";
    var add = document.createElement("button");
    add.type = "button";
    add.className = "secondary small";
    add.textContent = spec.add;
    var toggle = document.createElement("button");
    toggle.type = "button";
    toggle.className = "secondary small";
    toggle.textContent = "Edit as JSON";
    toggle.setAttribute("aria-pressed", "false");
    var note = document.createElement("p");
    note.className = "field-error";
    note.setAttribute("role", "alert");
    controls.append(add, toggle);
    box.append(wrap, empty, controls, note);
    textarea.parentNode.insertBefore(box, textarea);

    function cell(row, col, value, index) {
      var td = document.createElement("td");
      var control;
      var name = col.label + " of " + spec.row + " " + (index + 1);
      if (col.options) {
        control = document.createElement("select");
        col.options.forEach(function (option) {
          var o = document.createElement("option");
          o.value = option;
          o.textContent = option;
          control.appendChild(o);
        });
        control.value = col.options.indexOf(value) >= 0 ? value : col.options[0];
      } else if (col.checkbox) {
        control = document.createElement("input");
        control.type = "checkbox";
        control.checked = value === undefined ? true : !!value;
      } else {
        control = document.createElement("input");
        control.type = "text";
        control.value = value === undefined || value === null ? "" : String(value);
        control.placeholder = col.placeholder || "";
        control.spellcheck = false;
      }
      control.dataset.key = col.key;
      control.setAttribute("aria-label", name);
      td.appendChild(control);
      return td;
    }

    function addRow(item) {
      var tr = body.insertRow();
      tr.accItem = item;
      var index = body.rows.length - 1;
      spec.columns.forEach(function (col) { tr.appendChild(cell(tr, col, item[col.key], index)); });
      var td = document.createElement("td");
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "secondary small";
      remove.textContent = "Remove";
      remove.setAttribute("aria-label", "Remove " + spec.row + " " + (index + 1));
      remove.addEventListener("click", function () {
        tr.remove();
        renumber();
        write();
      });
      td.appendChild(remove);
      tr.appendChild(td);
      return tr;
    }

    function renumber() {
      Array.prototype.forEach.call(body.rows, function (tr, i) {
        tr.querySelectorAll("[data-key]").forEach(function (control) {
          var col = spec.columns.filter(function (c) { return c.key === control.dataset.key; })[0];
          control.setAttribute("aria-label", col.label + " of " + spec.row + " " + (i + 1));
        });
        tr.querySelector("button").setAttribute("aria-label", "Remove " + spec.row + " " + (i + 1));
      });
      empty.hidden = body.rows.length > 0;
    }

    function rowValue(tr) {
      var item = Object.assign({}, tr.accItem);
      tr.querySelectorAll("[data-key]").forEach(function (control) {
        var key = control.dataset.key;
        var col = spec.columns.filter(function (c) { return c.key === key; })[0];
        if (control.type === "checkbox") item[key] = control.checked;
        else {
          var text = control.value.trim();
          if (text === "" && col.optional) delete item[key];
          else item[key] = text;
        }
      });
      return item;
    }

    function write() {
      var list = Array.prototype.map.call(body.rows, rowValue);
      textarea.value = list.length ? JSON.stringify(list, null, 2) : "[]";
    }

    function fill(list) {
      body.textContent = "";
      list.forEach(addRow);
      renumber();
    }

    function showTable(on) {
      box.querySelector(".table-scroll").hidden = !on;
      empty.hidden = !on || body.rows.length > 0;
      add.hidden = !on;
      textarea.hidden = on;
      toggle.textContent = on ? "Edit as JSON" : "Edit as a table";
      toggle.setAttribute("aria-pressed", on ? "false" : "true");
    }

    body.addEventListener("input", write);
    body.addEventListener("change", write);
    add.addEventListener("click", function () {
      var tr = addRow(Object.assign({}, spec.blank));
      renumber();
      write();
      tr.querySelector("input, select").focus();
    });
    toggle.addEventListener("click", function () {
      if (textarea.hidden) {
        showTable(false);
        textarea.focus();
        return;
      }
      var list = readList(textarea.value);
      if (list === null) {
        note.textContent = "This text is not a JSON list of objects, so it cannot be shown as a table; fix it here.";
        return;
      }
      note.textContent = "";
      fill(list);
      showTable(true);
    });

    var first = readList(textarea.value);
    if (first === null) {
      note.textContent = "This text is not a JSON list of objects, so it cannot be shown as a table; fix it here.";
      showTable(false);
    } else {
      fill(first);
      if (textarea.value.trim() === "") write();
      showTable(true);
    }
    textarea.accTable = { fill: fill, write: write };
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
      var editor = window.AccSchemaEditor && window.AccSchemaEditor.get(confSchema);
      if (editor) editor.setValue(prefilled);
      else confSchema.value = prefilled;
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
    document.querySelectorAll("textarea[data-table-editor]").forEach(tableEditor);

    /* the widget's run page: refresh until the run is final (the page is small; no socket needed) */
    var status = document.getElementById("run-status");
    if (status && !status.dataset.final) window.setTimeout(function () { window.location.reload(); }, 1500);
  });
})();
