/* The Run form: json-editor renders the routine's conf schema (or a key/value editor); errors show next to
 * their field before submitting, and the server's own errors (it validates again) after. */
(function () {
  "use strict";

  /* --- json-editor shows what a schema says, and what a value holds, as text ---------------------------------
   * Schema titles, descriptions, enum labels and defaults come from routine and model authors, values from
   * anyone; none of it may become markup. json-editor "cleans" text by parsing it as HTML in this document
   * (cleanText, purify): an <img onerror> in a title ran script, and the text lost its tags. Here text stays
   * text (the theme and the editors put it in text nodes, input values and attributes), the descriptions and
   * the preview of enums of objects are built as DOM, and the schema loses the few keywords that make
   * json-editor write HTML or attributes of the author's choosing. The server still validates every value
   * against the schema as written. */
  function plainText(text) {
    return text === null || text === undefined ? "" : String(text);
  }

  function enumPreview(value) {
    if (value === null || typeof value !== "object") {
      var leaf = document.createElement("span");
      leaf.textContent = value === null ? "null" : String(value);
      return leaf;
    }
    var list = document.createElement(Array.isArray(value) ? "ol" : "ul");
    Object.keys(value).forEach(function (key) {
      var item = document.createElement("li");
      if (!Array.isArray(value)) {
        var name = document.createElement("em");
        name.textContent = key;
        item.append(name, ": ");
      }
      item.appendChild(enumPreview(value[key]));
      list.appendChild(item);
    });
    return list;
  }

  function textOnly(JSONEditor) {
    if (JSONEditor.accTextOnly) return;
    JSONEditor.accTextOnly = true;
    JSONEditor.AbstractEditor.prototype.cleanText = plainText;
    JSONEditor.AbstractTheme.prototype.cleanText = plainText;
    JSONEditor.AbstractEditor.prototype.purify = function (value) { return value; };
    JSONEditor.AbstractTheme.prototype.getDescription = function (text) {
      var el = document.createElement("p");
      el.textContent = plainText(text);
      return el;
    };
    var EnumEditor = JSONEditor.defaults.editors["enum"];
    if (EnumEditor) {
      var refresh = EnumEditor.prototype.refreshValue;
      EnumEditor.prototype.getHTML = function () { return ""; };
      EnumEditor.prototype.refreshValue = function () {
        refresh.call(this);
        if (!this.display_area || !this.enum || this.selected < 0) return;
        this.display_area.textContent = "";
        this.display_area.appendChild(enumPreview(this.enum[this.selected]));
      };
    }
  }

  /* formats json-editor renders as ordinary inputs or layouts; others pick editors that write HTML or need a
   * library this page does not load (rating, signature, upload, info, button, rich text...) */
  var PLAIN_FORMATS = [
    "checkbox", "select", "radio", "table", "grid", "grid-strict", "tabs", "tabs-top", "categories",
    "textarea", "password", "email", "url", "uri", "tel", "color", "number", "range", "hidden",
    "date", "time", "datetime-local", "date-time", "month", "week", "uuid",
  ];
  var SCRIPTED_OPTIONS = ["inputAttributes", "containerAttributes", "upload", "button"];

  /* keywords whose value is a schema, a list of schemas, or a map of names to schemas */
  var ONE_SCHEMA = ["additionalProperties", "items", "additionalItems", "contains", "not", "if", "then", "else",
    "propertyNames", "unevaluatedItems", "unevaluatedProperties"];
  var SCHEMA_LISTS = ["allOf", "anyOf", "oneOf", "prefixItems", "items"];
  var SCHEMA_MAPS = ["properties", "patternProperties", "definitions", "$defs", "dependentSchemas", "dependencies"];

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  function plainSchema(schema) {
    if (!isObject(schema)) return schema;
    var copy = {};
    Object.keys(schema).forEach(function (key) {
      var value = schema[key];
      if (key === "links" || key === "media") return; /* links become <a href> and <img src> from templates */
      if (key === "format" && PLAIN_FORMATS.indexOf(value) < 0) return;
      if (key === "options" && isObject(value)) {
        value = Object.assign({}, value);
        SCRIPTED_OPTIONS.forEach(function (name) { delete value[name]; });
      } else if (SCHEMA_MAPS.indexOf(key) >= 0 && isObject(value)) {
        var map = {};
        Object.keys(value).forEach(function (name) { map[name] = plainSchema(value[name]); });
        value = map;
      } else if (SCHEMA_LISTS.indexOf(key) >= 0 && Array.isArray(value)) {
        value = value.map(plainSchema);
      } else if (ONE_SCHEMA.indexOf(key) >= 0) {
        value = plainSchema(value);
      }
      copy[key] = value;
    });
    return copy;
  }

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
    textOnly(window.JSONEditor);
    cfg.schema = plainSchema(cfg.schema);
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
