/* The Run form: json-editor renders the routine's conf schema (or a key/value editor); errors show next to
 * their field before submitting, and the server's own errors (it validates again) after. */
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
    if (!cfg || !form || !window.JSONEditor) return;
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
      schema: cfg.schema,
      theme: "html",
      iconlib: null,
      disable_collapse: true,
      disable_edit_json: true,
      disable_properties: true,
      disable_array_reorder: true,
      disable_array_delete_all_rows: true,
      disable_array_delete_last_row: true,
      prompt_before_delete: false,
      required_by_default: false,
      show_errors: fieldErrors.length ? "always" : "interaction",
      custom_validators: [serverValidator],
    };
    if (cfg.kind === "schema") {
      /* Start values become the properties' defaults: a startval would hide the optional properties it lacks.
       * Optional fields left empty are left out of the value, so they do not reach the job as "". */
      var schema = JSON.parse(JSON.stringify(cfg.schema));
      schema.options = Object.assign({}, schema.options, { remove_empty_properties: true });
      Object.keys(schema.properties || {}).forEach(function (name, i) {
        var prop = schema.properties[name];
        if (prop && typeof prop === "object" && prop.propertyOrder === undefined) prop.propertyOrder = i + 1; /* schema order */
      });
      Object.keys(cfg.startval || {}).forEach(function (name) {
        if (schema.properties && schema.properties[name]) schema.properties[name]["default"] = cfg.startval[name];
      });
      options.schema = schema;
    } else {
      options.startval = cfg.startval;
    }
    var editor = new window.JSONEditor(holder, options);

    editor.on("ready", function () {
      holder.dataset.ready = "1";
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
