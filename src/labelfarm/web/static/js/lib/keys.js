// Shortcut keys on any keyboard layout. A key that types printable ASCII is taken as typed
// (so AZERTY, Dvorak and the rest keep their letters); a key that types anything else (a
// Tamil or Hindi letter, say) is named by its place, KeyboardEvent.code, read on a US
// layout: the key that types "ச" on a Tamil layout is "s" when it sits where S does.
const US = {
  BracketLeft: ["[", "{"], BracketRight: ["]", "}"], Slash: ["/", "?"], Period: [".", ">"],
  Comma: [",", "<"], Minus: ["-", "_"], Equal: ["=", "+"], Semicolon: [";", ":"],
  Quote: ["'", "\""], Backquote: ["`", "~"], Backslash: ["\\", "|"],
};
const UNNAMED = new Set(["Dead", "Process", "Unidentified"]);

export function shortcut(e) {
  const k = e.key || "";
  if ((k.length > 1 && !UNNAMED.has(k)) || /^[\x20-\x7e]$/.test(k)) return k;
  const m = /^Key([A-Z])$|^(?:Digit|Numpad)(\d)$/.exec(e.code || "");
  if (m) return m[1] ? (e.shiftKey ? m[1] : m[1].toLowerCase()) : m[2];
  const pair = US[e.code];
  return pair ? pair[e.shiftKey ? 1 : 0] : k;
}
