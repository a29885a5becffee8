/* The Run form: json-editor renders the routine's conf schema (or a key/value editor); errors show next to
 * their field before submitting, and the server's own errors (it validates again) after. json-editor is set up
 * (text stays text) by static/js/jsoneditor_setup.js, loaded before this file. */
(function () {
  "use strict";

  function valueAt(value, path) {
    var parts = path.split(".").slice(1);
    for (var i = 0; i < parts.length; i++) {
      if (value === null || value === undefined) return undefined;
      value = value[parts[i]];
    }
    return value;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var cfg = window.Acc.jsonScript("editor-config");
    var form = document.getElementById("run-form");
    if (!cfg || !form || !window.JSONEditor || !window.AccJsonEditor) return;
    var holder = document.getElementById("conf-editor");
    var summary = document.getElementById("form-errors");
    var hidden = document.getElementById("conf-json");
    var button = document.getElementById("run-button");
    var serverErrors = cfg.errors || {};
    var fieldErrors = Object.keys(serverErrors).filter(function (p) { return p !== "root" && p !== "selected"; });

    /* The server's message for a field stays until that field's value changes. */
    function serverValidator(schema, value, path) {
      if (fieldErrors.indexOf(path) < 0) return [];
      if (JSON.stringify(value) !== JSON.stringify(valueAt(cfg.startval, path))) return [];
      return serverErrors[path].map(function (message) {
        return { path: path, property: "server", message: message.replace(/\.$/, "") };
      });
    }

    var options = {
      schema: cfg.kind === "schema" ? window.AccJsonEditor.formSchema(cfg.schema, cfg.startval) : cfg.schema,
      show_errors: fieldErrors.length ? "always" : "interaction",
      custom_validators: [serverValidator],
    };
    if (cfg.kind !== "schema") options.startval = cfg.startval;
    var editor = window.AccJsonEditor.create(holder, options);

    /* a key/value row's value is a textarea as tall as its text (up to a limit): long values are seen whole */
    function fit(area) {
      area.style.height = "auto";
      area.style.height = Math.min(area.scrollHeight + 4, 240) + "px";
    }
    function fitAll() {
      holder.querySelectorAll(".je-table textarea").forEach(fit);
    }
    holder.addEventListener("input", function (event) {
      if (event.target.tagName === "TEXTAREA") fit(event.target);
    });
    editor.on("change", fitAll);

    editor.on("ready", function () {
      holder.dataset.ready = "1";
      fitAll();
      /* secrets: never autofilled or echoed */
      (cfg.secrets || []).forEach(function (name) {
        var input = holder.querySelector('[name="root[' + name + ']"]');
        if (input) input.setAttribute("autocomplete", "new-password");
      });
    });

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var errors = editor.validate(editor.getValue()); /* fresh, not the result cached before the last edit */
      if (errors.length) {
        editor.setOption("show_errors", "always");
        summary.textContent = errors.length === 1 ? "Fix the marked field before running." : "Fix the " + errors.length + " marked fields before running.";
        var first = holder.querySelector("[role=alert]");
        if (first && first.closest(".form-control")) {
          var input = first.closest(".form-control").querySelector("input, select, textarea");
          if (input) input.focus();
        }
        return;
      }
      summary.textContent = "";
      hidden.value = JSON.stringify(editor.getValue());
      button.disabled = true;
      button.textContent = "Starting…";
      form.submit();
    });
    window.accRunForm = { editor: editor };
  });
})();
