/* json-editor set up the same way on every page that renders a routine's conf schema as a form (the Run form,
 * static/js/runform.js; the jobflow builder's conf override, static/js/builder.js). Load it after
 * vendor/json-editor/jsoneditor.js; it defines window.AccJsonEditor:
 *   create(holder, options)   a JSONEditor on `holder`, with the text-only hardening below applied once and
 *                             `options` over the shared defaults (options.schema is made plain first)
 *   formSchema(schema, values) a copy of `schema` whose properties default to `values` (start values that keep
 *                             optional properties visible), in schema order, empty optional fields left out
 *   plainSchema(schema)       the schema without the keywords that make json-editor write HTML
 *
 * json-editor shows what a schema says, and what a value holds, as text. Schema titles, descriptions, enum
 * labels and defaults come from routine and model authors, values from anyone; none of it may become markup.
 * json-editor "cleans" text by parsing it as HTML in this document (cleanText, purify): an <img onerror> in a
 * title ran script, and the text lost its tags. Here text stays text (the theme and the editors put it in text
 * nodes, input values and attributes), the descriptions and the preview of enums of objects are built as DOM,
 * and the schema loses the few keywords that make json-editor write HTML or attributes of the author's choosing.
 * The server still validates every value against the schema as written. */
(function () {
  "use strict";

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
   * library these pages do not load (rating, signature, upload, info, button, rich text...) */
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

  /* Start values become the properties' defaults: a startval would hide the optional properties it lacks.
   * Optional fields left empty are left out of the value, so they do not reach the job as "". */
  function formSchema(schema, values) {
    schema = JSON.parse(JSON.stringify(schema));
    schema.options = Object.assign({}, schema.options, { remove_empty_properties: true });
    Object.keys(schema.properties || {}).forEach(function (name, i) {
      var prop = schema.properties[name];
      if (isObject(prop) && prop.propertyOrder === undefined) prop.propertyOrder = i + 1; /* schema order */
    });
    Object.keys(values || {}).forEach(function (name) {
      if (schema.properties && isObject(schema.properties[name])) schema.properties[name]["default"] = values[name];
    });
    return schema;
  }

  function create(holder, options) {
    textOnly(window.JSONEditor);
    var all = Object.assign({
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
    }, options);
    all.schema = plainSchema(all.schema);
    return new window.JSONEditor(holder, all);
  }

  window.AccJsonEditor = { create: create, formSchema: formSchema, plainSchema: plainSchema };
})();
