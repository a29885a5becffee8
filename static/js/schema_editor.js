/* The JSON Schema editor with a live preview of the form it generates (routine editor, hosting Publish/Manage).
 *
 * MARKUP CONTRACT (a textarea enhanced into CodeMirror 5; every setting is a data- attribute):
 *
 *   <label for="conf-schema">Conf schema</label>
 *   <p id="conf-schema-help" class="help">What the schema is for.</p>
 *   <textarea id="conf-schema" name="conf_schema" aria-describedby="conf-schema-help"
 *             data-schema-editor                        required: marks the textarea to enhance
 *             data-preview="conf-schema-preview"        optional: id of the element the live form preview goes in
 *             data-error="conf-schema-error"            optional: id of the element syntax/shape errors go in
 *                                                       (one is created after the editor when absent)
 *             data-allow-empty="true"                   optional: empty text is valid and means "no schema"
 *             data-empty-text="No schema: ..."          optional: what the preview says while the text is empty
 *             data-root-type="object"                   optional: the type the top level must declare (default: any)
 *   >{"type": "object", ...}</textarea>
 *   <div id="conf-schema-preview" class="schema-preview"></div>
 *   <p id="conf-schema-error" class="field-error" role="alert"></p>   (server errors may be rendered in it)
 *
 * Scripts, in this order (no inline script: the pages run under a strict CSP):
 *   vendor/codemirror/lib/codemirror.js, vendor/codemirror/mode/javascript/javascript.js,
 *   vendor/codemirror/addon/edit/matchbrackets.js, vendor/json-editor/jsoneditor.js (only needed with a preview),
 *   js/app.js (base.html), js/schema_editor.js; and the stylesheet vendor/codemirror/lib/codemirror.css.
 *
 * Behaviour: the textarea stays the form field (it is kept in sync on every change, so a normal POST sends the
 * text). A JSON syntax error is shown with its line ("Line 3, column 5: ...") and that line is marked; valid JSON
 * re-renders the preview with json-editor (the same options and text-only hardening as the Run form,
 * static/js/runform.js), debounced. The editor's own input carries the label's text as its accessible name
 * (find it with getByLabel), and the label focuses it. After each check the textarea fires a
 * "schema-editor:change" event with detail {text, schema (null when empty or invalid), error ("" when valid)}.
 * window.AccSchemaEditor.enhance(textarea) enhances one added later; AccSchemaEditor.get(textarea) returns
 * {cm, setValue(text), getSchema(), preview (the json-editor or null)}.
 * The server validates the schema again on save (one validation path); this is only the author's early warning.
 */
(function () {
  "use strict";

  /* --- json-editor shows text as text: the same hardening as the Run form (static/js/runform.js) ---------- */
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

  var PLAIN_FORMATS = [
    "checkbox", "select", "radio", "table", "grid", "grid-strict", "tabs", "tabs-top", "categories",
    "textarea", "password", "email", "url", "uri", "tel", "color", "number", "range", "hidden",
    "date", "time", "datetime-local", "date-time", "month", "week", "uuid",
  ];
  var SCRIPTED_OPTIONS = ["inputAttributes", "containerAttributes", "upload", "button"];
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
      if (key === "links" || key === "media") return;
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

  /* The options the Run form uses, so the preview is the form a person running the routine will see. */
  function previewOptions(schema) {
    schema = plainSchema(JSON.parse(JSON.stringify(schema)));
    if (isObject(schema.properties)) {
      schema.options = Object.assign({}, schema.options, { remove_empty_properties: true });
      Object.keys(schema.properties).forEach(function (name, i) {
        var prop = schema.properties[name];
        if (isObject(prop) && prop.propertyOrder === undefined) prop.propertyOrder = i + 1;
      });
    }
    return {
      schema: schema,
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
      show_errors: "interaction",
    };
  }

  /* --- syntax errors with their line ------------------------------------------------------------------- */
  function lineColumn(text, position) {
    var before = text.slice(0, position).split("\n");
    return { line: before.length, column: before[before.length - 1].length + 1 };
  }

  function parseError(text, error) {
    var message = String(error && error.message ? error.message : error);
    var where = null;
    var lc = message.match(/line (\d+) column (\d+)/);
    var pos = message.match(/position (\d+)/);
    if (lc) where = { line: +lc[1], column: +lc[2] };
    else if (pos) where = lineColumn(text, +pos[1]);
    else if (/end of JSON input|Unexpected end/.test(message)) where = lineColumn(text, text.length);
    message = message.replace(/\s*\(line \d+ column \d+\)/, "").replace(/ in JSON at position \d+/, "");
    message = message.replace(/^JSON\.parse: /, "").replace(/^SyntaxError: /, "");
    return { where: where, message: message };
  }

  function check(text, cfg) {
    if (!text.trim()) {
      return cfg.allowEmpty ? { schema: null, error: "" } : { schema: null, error: "Write a JSON Schema here." };
    }
    var schema;
    try {
      schema = JSON.parse(text);
    } catch (err) {
      var found = parseError(text, err);
      var prefix = found.where ? "Line " + found.where.line + ", column " + found.where.column + ": " : "";
      return { schema: null, error: prefix + found.message, line: found.where ? found.where.line : null };
    }
    if (!isObject(schema)) return { schema: null, error: 'A schema is a JSON object, e.g. {"type": "object", "properties": {}}.' };
    if (cfg.rootType && schema.type !== cfg.rootType) {
      return { schema: null, error: 'The top level must say "type": "' + cfg.rootType + '".' };
    }
    return { schema: schema, error: "" };
  }

  /* --- one editor ----------------------------------------------------------------------------------------- */
  var instances = [];

  function byId(id) {
    return id ? document.getElementById(id) : null;
  }

  function labelOf(textarea) {
    if (!textarea.id) return null;
    return document.querySelector('label[for="' + textarea.id + '"]');
  }

  function enhance(textarea) {
    if (textarea.accSchemaEditor || !window.CodeMirror) return textarea.accSchemaEditor || null;
    var cfg = {
      allowEmpty: textarea.dataset.allowEmpty === "true",
      emptyText: textarea.dataset.emptyText || "No schema: the Run form is a table of names and values.",
      rootType: textarea.dataset.rootType || "",
    };
    var preview = byId(textarea.dataset.preview);
    var errorBox = byId(textarea.dataset.error);
    if (!errorBox) {
      errorBox = document.createElement("p");
      errorBox.className = "field-error";
      errorBox.setAttribute("role", "alert");
    }
    var serverMessage = errorBox.textContent.trim();
    var label = labelOf(textarea);
    var name = label ? label.textContent.trim() : textarea.getAttribute("aria-label") || "JSON Schema";
    var cm = window.CodeMirror.fromTextArea(textarea, {
      mode: { name: "javascript", json: true },
      lineNumbers: true,
      matchBrackets: true,
      tabSize: 2,
      indentUnit: 2,
      viewportMargin: Infinity,
      screenReaderLabel: name,
    });
    var wrapper = cm.getWrapperElement();
    wrapper.classList.add("schema-code");
    if (!errorBox.parentNode) wrapper.parentNode.insertBefore(errorBox, wrapper.nextSibling);
    var input = cm.getInputField();
    input.setAttribute("aria-label", name);
    if (textarea.getAttribute("aria-describedby")) input.setAttribute("aria-describedby", textarea.getAttribute("aria-describedby"));
    if (label) {
      /* the label names the editor's own input; a click on it focuses the editor */
      label.removeAttribute("for");
      label.addEventListener("click", function () { cm.focus(); });
    }

    var state = { cm: cm, preview: null, schema: null, error: "", marked: null };
    var timer = null;

    function render(result) {
      if (!preview) return;
      if (state.preview) {
        try { state.preview.destroy(); } catch (e) { /* a half-built editor */ }
        state.preview = null;
      }
      preview.textContent = "";
      preview.dataset.ready = "";
      if (result.error) {
        var stale = document.createElement("p");
        stale.className = "muted";
        stale.textContent = "Fix the schema to see its form.";
        preview.appendChild(stale);
        return;
      }
      if (!result.schema) {
        var none = document.createElement("p");
        none.className = "muted";
        none.textContent = cfg.emptyText;
        preview.appendChild(none);
        preview.dataset.ready = "1";
        return;
      }
      if (!window.JSONEditor) return;
      textOnly(window.JSONEditor);
      var holder = document.createElement("div");
      preview.appendChild(holder);
      try {
        state.preview = new window.JSONEditor(holder, previewOptions(result.schema));
        state.preview.on("ready", function () { preview.dataset.ready = "1"; });
      } catch (err) {
        preview.textContent = "";
        showError("The form cannot be drawn from this schema: " + (err && err.message ? err.message : err));
      }
    }

    function showError(message, line) {
      if (state.marked !== null) cm.removeLineClass(state.marked, "background", "schema-error-line");
      state.marked = null;
      if (line) {
        state.marked = cm.getLineHandle(line - 1);
        if (state.marked) cm.addLineClass(state.marked, "background", "schema-error-line");
      }
      errorBox.textContent = message;
      wrapper.classList.toggle("invalid", !!message);
      input.setAttribute("aria-invalid", message ? "true" : "false");
    }

    function update() {
      timer = null;
      var text = cm.getValue();
      textarea.value = text;
      var result = check(text, cfg);
      state.schema = result.schema;
      state.error = result.error;
      showError(result.error || serverMessage, result.line);
      render(result);
      textarea.dispatchEvent(new CustomEvent("schema-editor:change", {
        bubbles: true, detail: { text: text, schema: result.schema, error: result.error },
      }));
    }

    cm.on("change", function () {
      serverMessage = ""; /* the server's message stays until the author changes the text */
      textarea.value = cm.getValue();
      if (timer) clearTimeout(timer);
      timer = setTimeout(update, 250);
    });

    var api = {
      cm: cm,
      setValue: function (text) { cm.setValue(text); if (timer) clearTimeout(timer); update(); },
      getSchema: function () { return state.schema; },
      getError: function () { return state.error; },
      get preview() { return state.preview; },
    };
    textarea.accSchemaEditor = api;
    instances.push(api);
    update();
    return api;
  }

  window.AccSchemaEditor = {
    enhance: enhance,
    get: function (textarea) { return textarea ? textarea.accSchemaEditor || null : null; },
    plainSchema: plainSchema,
    textOnly: textOnly,
  };

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("textarea[data-schema-editor]").forEach(enhance);
  });
})();
