// Interface messages (from the page's boot data) and per-language display names of labels.
let messages = {};
let lang = "en";

export function setMessages(code, catalogue) {
  lang = code;
  messages = catalogue || {};
}

export function t(key, values = {}) {
  const text = messages[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in values ? String(values[name]) : m));
}

// A field's option or label shown in the interface language: field.display[lang][name],
// then English display names, then the canonical name itself.
export function display(field, name) {
  const d = field.display || {};
  return (d[lang] && d[lang][name]) || (d.en && d.en[name]) || name;
}

// The field's title: display[lang][field.name] when given, else the field name.
export function title(field) {
  return display(field, field.name);
}

// Help text may be one string or one per language.
export function help(field) {
  const h = field.help;
  if (!h) return "";
  if (typeof h === "string") return h;
  return h[lang] || h.en || "";
}

export function number(n) {
  return new Intl.NumberFormat(lang).format(n);
}

// A day (from an ISO 8601 time) in the interface language, e.g. "29 நவ. 2026".
export function date(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : new Intl.DateTimeFormat(lang, { dateStyle: "medium" }).format(d);
}
